//! `check`: the versions Concourse should record, by digest, under the source's tag policy
//! ([`crate::policy`]), less those `source.verify` does not accept.

use crate::config::{CheckRequest, Version};
use crate::error::Result;
use crate::registry::Registry;
use crate::verify::{Rejected, Verifier};

/// Lists the versions Concourse should record, oldest first ([`crate::policy::versions`] says
/// which).
///
/// With `source.verify`, a digest without an acceptable signature is left out (one stderr line
/// says why), so it never triggers a deploy.
pub async fn check(request: CheckRequest) -> Result<Vec<Version>> {
    let source = &request.source;
    let verifier = source.verify.as_ref().map(Verifier::new).transpose()?;
    let registry = Registry::new(source)?;
    let versions = crate::policy::versions(&registry, source, request.version).await?;
    let Some(verifier) = verifier else {
        return Ok(versions);
    };
    let mut verified = Vec::with_capacity(versions.len());
    for version in versions {
        match verifier.verify(&registry, &version.digest).await? {
            Ok(_) => verified.push(version),
            Err(Rejected(reason)) => eprintln!(
                "skipping {}@{}: {reason}",
                source.repository, version.digest
            ),
        }
    }
    Ok(verified)
}
