//! Reading the manifests a registry serves: an index (multi-arch) or a single image manifest, in
//! either the OCI or the Docker schema 2 flavour (oci-spec's types read both).

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::config::{Digest, Platform};
use crate::error::one_line;

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub body: Vec<u8>,
}

/// A manifest, by kind.
#[derive(Debug)]
pub enum Manifest {
    Index(Box<ImageIndex>),
    Image(Box<ImageManifest>),
}

impl Manifest {
    /// Parses a fetched manifest. An index is recognised by its `manifests` list, so a registry
    /// that sends a generic `Content-Type` still works.
    pub fn parse(fetched: &Fetched) -> Result<Manifest, String> {
        // oci-spec's errors quote what they could not read, which is the server's text.
        let value: serde_json::Value = serde_json::from_slice(&fetched.body)
            .map_err(|e| format!("manifest is not JSON ({})", one_line(&e.to_string())))?;
        let result = if value.get("manifests").is_some() {
            serde_json::from_value(value).map(|i| Manifest::Index(Box::new(i)))
        } else {
            serde_json::from_value(value).map(|m| Manifest::Image(Box::new(m)))
        };
        result.map_err(|e| {
            format!(
                "cannot read the manifest ({}): {}",
                one_line(&fetched.media_type),
                one_line(&e.to_string())
            )
        })
    }
}

/// The platforms an index offers, `os/arch[/variant]`, leaving out attestation entries
/// (`unknown/unknown`) that buildx adds beside the images.
pub fn platforms(index: &ImageIndex) -> Vec<String> {
    index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .filter(|p| p.os().to_string() != "unknown")
        .map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s = format!("{s}/{v}");
            }
            one_line(&s)
        })
        .collect()
}

/// The index entry for `want`. Without a variant in `want`, any variant of that os/arch matches
/// (as `docker pull --platform linux/arm64` does); with one, it must be equal, where arm64's
/// implicit `v8` counts as given.
pub fn select<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor, String> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform().as_ref().is_some_and(|p| {
                matches(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                    want,
                )
            })
        })
        .ok_or_else(|| {
            format!(
                "no image for platform {want} in the index; it has: {}",
                platforms(index).join(", ")
            )
        })
}

/// Whether an image for `os`/`architecture`/`variant` is what `want` asks for (see [`select`]).
pub fn matches(os: &str, architecture: &str, variant: Option<&str>, want: &Platform) -> bool {
    os == want.os
        && architecture == want.architecture
        && match (want.variant.as_deref(), variant) {
            (None, _) => true,
            (Some(w), Some(v)) => w == v,
            (Some("v8"), None) => want.architecture == "arm64",
            (Some(_), None) => false,
        }
}

/// The digest of a descriptor, as this crate's sha256-only type.
pub fn digest_of(descriptor: &Descriptor) -> Result<Digest, String> {
    descriptor.digest().to_string().parse()
}
