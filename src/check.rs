//! `check`: the digest behind one tag, with registry-image-resource's version semantics.

use crate::config::{CheckRequest, Version};
use crate::error::Result;
use crate::registry::Registry;
use crate::registry::tag::current_digest;
use crate::verify::{Rejected, Verifier};

/// Lists the versions Concourse should record, oldest first.
///
/// - no version given: `[current]`; the tag does not exist: `[]`;
/// - the given version is current: `[current]`;
/// - otherwise `[given, current]` while the given digest still exists, else `[current]`.
///
/// With `source.verify`, a digest without an acceptable signature is left out (one stderr line
/// says why), so it never triggers a deploy.
pub async fn check(request: CheckRequest) -> Result<Vec<Version>> {
    let verifier = request
        .source
        .verify
        .as_ref()
        .map(Verifier::new)
        .transpose()?;
    let registry = Registry::new(&request.source)?;
    let Some(current) = current_digest(&registry, &request.source).await? else {
        eprintln!(
            "tag {} does not exist in {}; no versions yet",
            request.source.tag, request.source.repository
        );
        return Ok(vec![]);
    };
    let mut versions = Vec::with_capacity(2);
    if let Some(given) = request.version
        && given.digest != current
        && registry
            .manifest_digest(&given.digest.to_string())
            .await?
            .is_some()
    {
        versions.push(given);
    }
    versions.push(Version { digest: current });
    let Some(verifier) = verifier else {
        return Ok(versions);
    };
    let mut verified = Vec::with_capacity(versions.len());
    for version in versions {
        match verifier.verify(&registry, &version.digest).await? {
            Ok(()) => verified.push(version),
            Err(Rejected(reason)) => eprintln!(
                "skipping {}@{}: {reason}",
                request.source.repository, version.digest
            ),
        }
    }
    Ok(verified)
}
