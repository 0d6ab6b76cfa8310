//! The digest a tag (and `source.platform`) points at now: what `check` reports and what a put
//! deploys when no `get` step names one.

use super::Registry;
use super::manifest::{self, Manifest};
use crate::config::{Digest, Source};
use crate::error::{Error, Result, quote};

/// The digest `tag` points at now: the manifest (or index) digest, or with `source.platform`
/// the digest of that platform's manifest inside the index. `None` when the tag does not exist.
pub async fn current_digest(
    registry: &Registry,
    source: &Source,
    tag: &str,
) -> Result<Option<Digest>> {
    validate_tag(tag)?;
    let Some(platform) = &source.platform else {
        return registry.manifest_digest(tag).await;
    };
    // The platform's digest is inside the index body, so fetch it directly: one request.
    let Some(fetched) = registry.manifest(tag).await? else {
        return Ok(None);
    };
    let invalid = |message: String| Error::InvalidResponse {
        server: registry.name().host.clone(),
        what: format!("manifest {tag}"),
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

/// Whether `tag` is one: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (distribution's grammar). Anything
/// else would build a wrong URL rather than fail clearly, so listed tags are held to it too.
pub fn is_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    first_ok && rest_ok && tag.len() <= 128
}

fn validate_tag(tag: &str) -> Result<()> {
    if is_tag(tag) {
        Ok(())
    } else {
        Err(Error::Config {
            key: "source.tag",
            message: format!(
                "{} is not a valid tag (letters, digits, _ . -, at most 128)",
                quote(tag)
            ),
        })
    }
}
