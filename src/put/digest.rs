//! Which digest a put deploys: the one a `get` step wrote, `params.digest`, or the tag's now —
//! and only if `source.verify` accepts its signature.

use std::path::Path;

use crate::check::current_digest;
use crate::config::{Digest, OutParams, Source};
use crate::error::{Error, Result, quote};
use crate::registry::{ImageName, Registry};

/// The digest to deploy ([`resolve_digest`]), refused unless signed as `source.verify` demands.
pub async fn deployable_digest(source: &Source, params: &OutParams, dir: &Path) -> Result<Digest> {
    let digest = resolve_digest(source, params, dir).await?;
    if source.verify.is_some() {
        crate::verify::require(source, &Registry::new(source)?, &digest).await?;
    }
    Ok(digest)
}

/// The digest to deploy: from a `get` step's directory, from `params.digest`, or the tag now.
async fn resolve_digest(source: &Source, params: &OutParams, dir: &Path) -> Result<Digest> {
    match (&params.image, &params.digest) {
        (Some(_), Some(_)) => Err(Error::Config {
            key: "params.digest",
            message: "set either params.image or params.digest, not both".into(),
        }),
        (None, Some(digest)) => Ok(digest.clone()),
        (Some(path), None) => {
            let read = |name: &str| {
                let file = dir.join(path).join(name);
                std::fs::read_to_string(&file)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| Error::File {
                        path: file.display().to_string(),
                        message: format!("cannot read ({e}); params.image must name the directory of a get step of this image"),
                    })
            };
            let repository = read("repository")?;
            let same =
                ImageName::parse(&repository).ok() == Some(ImageName::parse(&source.repository)?);
            if !same {
                return Err(Error::Config {
                    key: "params.image",
                    message: format!(
                        "{path}/repository is {} but source.repository is {}; refusing to deploy another image",
                        quote(&repository),
                        quote(&source.repository)
                    ),
                });
            }
            read("digest")?.parse().map_err(|message| Error::File {
                path: dir.join(path).join("digest").display().to_string(),
                message,
            })
        }
        (None, None) => {
            let registry = Registry::new(source)?;
            current_digest(&registry, source)
                .await?
                .ok_or_else(|| Error::Config {
                    key: "source.tag",
                    message: format!(
                        "tag {} does not exist in {}",
                        quote(&source.tag),
                        source.repository
                    ),
                })
        }
    }
}
