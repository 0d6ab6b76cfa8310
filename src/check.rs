//! `check`: the digest behind one tag, with registry-image-resource's version semantics.

use crate::config::{CheckRequest, Digest, Source, Version};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::registry::manifest::{self, Manifest};
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

/// The digest `source.tag` points at now: the manifest (or index) digest, or with
/// `source.platform` the digest of that platform's manifest inside the index. `None` when the
/// tag does not exist.
pub async fn current_digest(registry: &Registry, source: &Source) -> Result<Option<Digest>> {
    validate_tag(&source.tag)?;
    let Some(platform) = &source.platform else {
        return registry.manifest_digest(&source.tag).await;
    };
    // The platform's digest is inside the index body, so fetch it directly: one request.
    let Some(fetched) = registry.manifest(&source.tag).await? else {
        return Ok(None);
    };
    let invalid = |message: String| Error::InvalidResponse {
        server: registry.name().host.clone(),
        what: format!("manifest {}", source.tag),
        message,
    };
    match Manifest::parse(&fetched).map_err(invalid)? {
        Manifest::Index(index) => {
            let entry = manifest::select(&index, platform).map_err(|message| Error::Config {
                key: "source.platform",
                message,
            })?;
            manifest::digest_of(entry).map(Some).map_err(invalid)
        }
        // A single-platform tag has nothing to choose from, but it must be for that platform:
        // following an amd64-only tag for arm64 nodes would deploy an image that cannot run.
        Manifest::Image(image) => {
            let config = registry.image_config(&image).await?;
            let (os, arch) = (config.os().to_string(), config.architecture().to_string());
            if manifest::matches(&os, &arch, config.variant().as_deref(), platform) {
                Ok(Some(fetched.digest))
            } else {
                let variant = config
                    .variant()
                    .as_ref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                Err(Error::Config {
                    key: "source.platform",
                    message: format!(
                        "the tag is a single-platform image for {os}/{arch}{variant}, not {platform}"
                    ),
                })
            }
        }
    }
}

/// Tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (distribution's grammar); anything else would
/// build a wrong URL rather than fail clearly.
fn validate_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(Error::Config {
            key: "source.tag",
            message: format!(
                "{} is not a valid tag (letters, digits, _ . -, at most 128)",
                crate::error::quote(tag)
            ),
        })
    }
}
