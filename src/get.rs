//! `in`: pin a version and write it out for later steps (no layers are downloaded).

use std::collections::HashMap;
use std::path::Path;

use crate::config::{Digest, InRequest};
use crate::error::{Error, Result};
use crate::protocol::{Metadata, StepOutput};
use crate::registry::manifest::{self, Manifest};
use crate::registry::{Fetched, Registry};

const REVISION: &str = "org.opencontainers.image.revision";
const SOURCE: &str = "org.opencontainers.image.source";

/// Writes `repository`, `tag`, `digest`, `reference` and `labels.json` into `dir`.
///
/// For an index, the labels come from one image's config: `source.platform`'s, else the first
/// platform's (they are built from the same commit, so revision and source agree).
pub async fn get(request: InRequest, dir: &Path) -> Result<StepOutput> {
    let source = &request.source;
    let registry = Registry::new(source)?;
    let digest = request.version.digest.clone();
    // Versions recorded before check reported tags have none; they came from `source.tag`.
    let tag = request
        .version
        .tag
        .clone()
        .unwrap_or_else(|| source.tag().to_string());
    crate::verify::require(source, &registry, &digest).await?;
    let top = fetch(&registry, &digest).await?;

    let mut metadata = vec![
        Metadata::new("repository", &source.repository),
        Metadata::new("tag", &tag),
        Metadata::new("digest", digest.to_string()),
    ];
    let (image, annotations) = match parse(&registry, &top)? {
        Manifest::Image(image) => {
            let annotations = image.annotations().clone().unwrap_or_default();
            (Some(image), annotations)
        }
        Manifest::Index(index) => {
            metadata.push(Metadata::new(
                "platforms",
                manifest::platforms(&index).join(", "),
            ));
            let entry = match &source.platform {
                Some(platform) => {
                    manifest::select(&index, platform).map_err(|message| Error::Config {
                        key: "source.platform",
                        message,
                    })?
                }
                None => index
                    .manifests()
                    .iter()
                    .find(|d| {
                        d.platform()
                            .as_ref()
                            .is_none_or(|p| p.os().to_string() != "unknown")
                    })
                    .ok_or_else(|| {
                        invalid(&registry, &digest, "the index lists no images".into())
                    })?,
            };
            let child_digest =
                manifest::digest_of(entry).map_err(|m| invalid(&registry, &digest, m))?;
            let child = fetch(&registry, &child_digest).await?;
            let image = match parse(&registry, &child)? {
                Manifest::Image(image) => Some(image),
                Manifest::Index(_) => None, // nested indexes carry no config of their own
            };
            (image, index.annotations().clone().unwrap_or_default())
        }
    };

    let config = match &image {
        Some(image) => Some(registry.image_config(image).await?),
        None => None,
    };
    let labels: HashMap<String, String> = config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    if let Some(created) = config.as_ref().and_then(|c| c.created().clone()) {
        metadata.push(Metadata::new("created", created));
    }
    for (name, key) in [("revision", REVISION), ("source", SOURCE)] {
        if let Some(value) = labels.get(key).or_else(|| annotations.get(key)) {
            metadata.push(Metadata::new(name, value));
        }
    }
    if let Some(platform) = &source.platform {
        metadata.push(Metadata::new("platform", platform.to_string()));
    }

    let reference = format!("{}@{digest}", source.repository);
    write(dir, "repository", &source.repository)?;
    write(dir, "tag", &tag)?;
    write(dir, "digest", &digest.to_string())?;
    write(dir, "reference", &reference)?;
    write(
        dir,
        "labels.json",
        &serde_json::to_string_pretty(&labels).expect("a map serializes"),
    )?;
    eprintln!("fetched {reference}");
    Ok(StepOutput {
        version: request.version,
        metadata,
    })
}

async fn fetch(registry: &Registry, digest: &Digest) -> Result<Fetched> {
    registry.manifest(&digest.to_string()).await?.ok_or_else(|| Error::Status {
        server: registry.name().host.clone(),
        what: format!("manifest {digest}"),
        status: 404,
        detail: ": it no longer exists (deleted or garbage-collected); let check find a current version".into(),
    })
}

fn parse(registry: &Registry, fetched: &Fetched) -> Result<Manifest> {
    Manifest::parse(fetched).map_err(|m| invalid(registry, &fetched.digest, m))
}

fn invalid(registry: &Registry, digest: &Digest, message: String) -> Error {
    Error::InvalidResponse {
        server: registry.name().host.clone(),
        what: format!("manifest {digest}"),
        message,
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot write: {e}"),
    })
}
