//! Images built in the test as OCI image layouts (the on-disk format `skopeo copy oci:` reads):
//! a single-platform image, or a two-platform index as `docker buildx` pushes it, optionally
//! with the attestation entry (platform `unknown/unknown`) buildx adds beside the images.
//!
//! Each image has one tiny gzipped tar layer and a config carrying the labels and `created`
//! date that `in` reports. Digests are computed here from the exact bytes written, so a test
//! knows what the registry must serve before it asks.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// The tag (`org.opencontainers.image.ref.name`) of the one entry in a layout's `index.json`.
pub const LAYOUT_TAG: &str = "fixture";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `os/arch[/variant]` of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl Platform {
    pub const LINUX_AMD64: Platform = Platform {
        os: "linux",
        architecture: "amd64",
        variant: None,
    };
    /// As buildx writes it: with the `v8` variant.
    pub const LINUX_ARM64: Platform = Platform {
        os: "linux",
        architecture: "arm64",
        variant: Some("v8"),
    };

    fn json(&self) -> Value {
        let mut p = json!({"os": self.os, "architecture": self.architecture});
        if let Some(v) = self.variant {
            p["variant"] = v.into();
        }
        p
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// What distinguishes one build of the app from the next.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `org.opencontainers.image.revision`; also makes the image's digest unique.
    pub revision: String,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// The config's `created`.
    pub created: String,
}

impl ImageSpec {
    pub fn new(revision: &str) -> ImageSpec {
        ImageSpec {
            revision: revision.into(),
            source: "https://github.com/werdnum/family-assistant".into(),
            created: "2025-06-01T12:00:00Z".into(),
        }
    }
}

/// An OCI image layout in a temporary directory.
pub struct Layout {
    dir: TempDir,
    digest: String,
    /// Each image's manifest digest by platform (one entry for a single image).
    images: Vec<(Platform, String)>,
}

impl Layout {
    /// A single linux/amd64 image.
    pub fn image(spec: &ImageSpec) -> Layout {
        let mut layout = Layout::empty();
        let manifest = layout.image_manifest(spec, &Platform::LINUX_AMD64);
        layout.finish(manifest);
        layout
    }

    /// An index of linux/amd64 and linux/arm64/v8 images, with the attestation entry buildx
    /// adds if `attestation` is set.
    pub fn index(spec: &ImageSpec, attestation: bool) -> Layout {
        let mut layout = Layout::empty();
        let mut entries = Vec::new();
        for platform in [Platform::LINUX_AMD64, Platform::LINUX_ARM64] {
            let mut entry = layout.image_manifest(spec, &platform);
            entry["platform"] = platform.json();
            entries.push(entry);
        }
        if attestation {
            let statement = layout.blob(
                "application/vnd.in-toto+json",
                br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#,
            );
            let config = layout.blob(OCI_CONFIG, b"{}");
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": [statement],
            });
            let mut entry = layout.blob(OCI_MANIFEST, &json_bytes(&manifest));
            entry["platform"] = json!({"os": "unknown", "architecture": "unknown"});
            entry["annotations"] = json!({
                "vnd.docker.reference.digest": layout.images[0].1,
                "vnd.docker.reference.type": "attestation-manifest",
            });
            entries.push(entry);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        });
        let index = layout.blob(OCI_INDEX, &json_bytes(&index));
        layout.finish(index);
        layout
    }

    /// One manifest whose layers are `(media type, blob, annotations)`, with an empty config:
    /// the shape of artifacts such as a cosign signature image.
    pub fn artifact(layers: &[(&str, &[u8], Value)]) -> Layout {
        let mut layout = Layout::empty();
        let layers: Vec<Value> = layers
            .iter()
            .map(|(media_type, bytes, annotations)| {
                let mut descriptor = layout.blob(media_type, bytes);
                descriptor["annotations"] = annotations.clone();
                descriptor
            })
            .collect();
        let config = layout.blob(OCI_CONFIG, b"{}");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers,
        });
        let manifest = layout.blob(OCI_MANIFEST, &json_bytes(&manifest));
        layout.finish(manifest);
        layout
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The digest of the layout's top manifest (the index for an index).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The manifest digest of one platform's image.
    pub fn image_digest(&self, platform: &Platform) -> &str {
        self.images
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, d)| d.as_str())
            .unwrap_or_else(|| panic!("the layout has no {platform} image"))
    }

    /// The labels every image of `spec` carries for `platform`.
    pub fn labels(spec: &ImageSpec, platform: &Platform) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "org.opencontainers.image.revision".into(),
                spec.revision.clone(),
            ),
            (
                "org.opencontainers.image.source".into(),
                spec.source.clone(),
            ),
            // Tells apart which platform's config a reader looked at.
            ("testbed.platform".into(), platform.to_string()),
        ])
    }

    fn empty() -> Layout {
        let dir = tempfile::Builder::new()
            .prefix("oci-layout-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).expect("blobs dir");
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("oci-layout");
        Layout {
            dir,
            digest: String::new(),
            images: Vec::new(),
        }
    }

    /// Writes one image's layer, config and manifest; returns the manifest's descriptor.
    fn image_manifest(&mut self, spec: &ImageSpec, platform: &Platform) -> Value {
        let tar = layer_tar(&format!("{} {platform}\n", spec.revision));
        let layer = self.blob(OCI_LAYER, &gzip(&tar));
        let mut config = json!({
            "created": spec.created,
            "os": platform.os,
            "architecture": platform.architecture,
            "config": {"Labels": Layout::labels(spec, platform)},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
        });
        if let Some(v) = platform.variant {
            config["variant"] = v.into();
        }
        let config = self.blob(OCI_CONFIG, &json_bytes(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        });
        let descriptor = self.blob(OCI_MANIFEST, &json_bytes(&manifest));
        let digest = descriptor["digest"].as_str().expect("digest").to_string();
        self.images.push((platform.clone(), digest));
        descriptor
    }

    /// Stores a blob under `blobs/sha256/`; returns its descriptor.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.path().join("blobs/sha256").join(hex), bytes).expect("blob");
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Names the top manifest (already stored) in `index.json`.
    fn finish(&mut self, mut top: Value) {
        self.digest = top["digest"].as_str().expect("digest").to_string();
        top["annotations"] = json!({"org.opencontainers.image.ref.name": LAYOUT_TAG});
        let index = json!({"schemaVersion": 2, "manifests": [top]});
        std::fs::write(self.dir.path().join("index.json"), json_bytes(&index)).expect("index");
    }
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A tar holding one small file, `/revision`.
fn layer_tar(contents: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "revision", contents.as_bytes())
        .expect("tar entry");
    builder.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}
