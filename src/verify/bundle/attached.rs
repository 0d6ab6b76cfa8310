//! The Sigstore bundles attached to an image: the referrers of its digest
//! ([`Registry::referrers`]) whose manifest carries a bundle layer, each bundle's JSON fetched.
//!
//! cosign v3 (and v2.4+ with `--new-bundle-format`) and `actions/attest-build-provenance` push one
//! referrer per signature or attestation: an OCI image manifest whose `artifactType` and single
//! layer are `application/vnd.dev.sigstore.bundle.v0.3+json`. The tag schema's index may list it
//! under the empty artifact type (cosign v2.6.5 does), so only descriptors of another explicit
//! artifact type (an SBOM, say) are passed over without a look.

use crate::config::Digest;
use crate::error::Result;
use crate::registry::manifest::{self, Manifest};
use crate::registry::referrers::Found;
use crate::registry::{Fetched, Registry};

/// The bundle media types (v0.1 to v0.3; v0.3 is the only one pushed as a referrer today).
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle";
/// What the referrers API is asked to filter by.
const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Bundles beyond this many are not read (each costs two requests).
const MAX_BUNDLES: usize = 16;
/// A bundle is a few KiB; a DSSE envelope with a large provenance, some hundred.
const MAX_BUNDLE: u64 = 4 << 20;

/// The bundles attached to `digest`, as JSON text, with where they were found and how many
/// requests that took.
pub struct Attached {
    pub found: Found,
    pub bundles: Vec<String>,
    pub requests: usize,
}

/// Lists the referrers of `digest` and fetches the bundle of each that has one.
pub async fn attached(registry: &Registry, digest: &Digest) -> Result<Attached> {
    let (found, descriptors) = registry.referrers(digest, BUNDLE_V03).await?;
    let mut requests = if found == Found::Api { 1 } else { 2 };
    let mut bundles = Vec::new();
    let candidates = descriptors.iter().filter(|d| {
        d.artifact_type()
            .as_ref()
            .is_none_or(|t| t.to_string().starts_with(BUNDLE) || t.to_string() == EMPTY)
    });
    for descriptor in candidates.take(MAX_BUNDLES) {
        let Ok(reference) = manifest::digest_of(descriptor) else {
            continue;
        };
        requests += 1;
        let Some(fetched) = registry.manifest(&reference.to_string()).await? else {
            continue;
        };
        let Some(layer) = bundle_layer(&fetched) else {
            continue;
        };
        requests += 1;
        let blob = registry.blob(&layer).await?;
        // Not UTF-8 is not a bundle; the verifier says so in its own words.
        bundles.push(String::from_utf8_lossy(&blob).into_owned());
    }
    Ok(Attached {
        found,
        bundles,
        requests,
    })
}

/// The digest of the bundle layer of a referrer's manifest, if it is an image manifest with one
/// of a sane size.
fn bundle_layer(fetched: &Fetched) -> Option<Digest> {
    let Ok(Manifest::Image(image)) = Manifest::parse(fetched) else {
        return None;
    };
    image
        .layers()
        .iter()
        .find(|l| l.media_type().to_string().starts_with(BUNDLE) && l.size() <= MAX_BUNDLE)
        .and_then(|l| manifest::digest_of(l).ok())
}
