//! What is attached to a manifest (OCI 1.1 referrers), for `source.verify`'s Sigstore bundles:
//! the referrers API (`GET /v2/<name>/referrers/<digest>`), or, where a registry answers it 404
//! (Distribution 2.8 and 3.x do), 405 or 501, the referrers tag schema: the index cosign and oras push as the
//! tag `sha256-<hex>` and update with each artifact they attach.

use oci_spec::image::{Descriptor, ImageIndex};
use reqwest::{Method, StatusCode};

use super::Registry;
use crate::config::Digest;
use crate::error::Result;

/// An index listing more artifacts than this is not one a CI attached; read no further.
const MAX_REFERRERS: usize = 64;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Where the referrers were found: requests differ, and so does what the log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The referrers API answered (the list may be empty).
    Api,
    /// The API answered 404 and the tag schema's index was read (it may not exist).
    TagSchema,
}

/// The tag the referrers tag schema keeps the referrers of `digest` under: `sha256-<hex>`.
/// (cosign's legacy signatures are the same tag with `.sig`.)
pub fn tag_schema(digest: &Digest) -> String {
    digest.to_string().replacen(':', "-", 1)
}

impl Registry {
    /// The descriptors of the manifests whose `subject` is `digest`, where the referrers API
    /// or the tag schema lists them, in their order, at most 64.
    /// `artifact_type` is passed to the API as its filter; registries may ignore it, and the tag
    /// schema has none, so callers still look at each descriptor.
    pub async fn referrers(
        &self,
        digest: &Digest,
        artifact_type: &str,
    ) -> Result<(Found, Vec<Descriptor>)> {
        let what = format!("referrers of {digest}");
        let resp = self
            .request(
                &what,
                Method::GET,
                &format!("referrers/{digest}?artifactType={artifact_type}"),
                INDEX,
            )
            .await?;
        let (found, index) = match resp.status() {
            // No such route: 404 from Distribution, 405 or 501 from servers that know the path
            // but not the method or the API.
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => {
                let tag = tag_schema(digest);
                (Found::TagSchema, self.manifest(&tag).await?.map(|f| f.body))
            }
            s if s.is_success() => (
                Found::Api,
                Some(self.body(&what, resp, super::MAX_MANIFEST).await?),
            ),
            _ => return Err(self.status_error(&what, resp).await),
        };
        let Some(body) = index else {
            return Ok((found, Vec::new()));
        };
        let index: ImageIndex = serde_json::from_slice(&body)
            .map_err(|e| self.invalid(&what, format!("not an OCI image index ({e})")))?;
        let mut manifests = index.manifests().clone();
        manifests.truncate(MAX_REFERRERS);
        Ok((found, manifests))
    }
}
