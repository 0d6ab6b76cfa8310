//! A minimal OCI distribution (registry API v2) client: what `check` and `in` need and nothing
//! more — manifests by tag or digest, small blobs by digest, and the auth dance.
//!
//! Every request goes through `Registry::request` (in `auth.rs`), which owns retries (429, 5xx,
//! connection errors; `Retry-After` honoured; bounded in attempts and time) and authentication
//! (answer a 401 challenge once, then reuse the credential for the rest of the process).
//!
//! Each job has a file: [`name`] (which repository, from `source.repository`), [`tag`] (the
//! digest a tag points at now), [`manifest`] (reading manifests and indexes), `auth.rs` and
//! [`challenge`] (the auth dance), `retry.rs`, `response.rs` (capped, verified bodies and error
//! lines), `remembered.rs` (a challenge kept between the checks of one container). The HTTP
//! client itself is [`crate::http`]'s.

mod auth;
pub mod challenge;
pub mod manifest;
pub mod name;
pub mod reference;
pub mod referrers;
mod remembered;
mod response;
mod retry;
pub mod tag;
mod tags;

use std::cell::Cell;
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::config::{Digest, Secret, Source};
use crate::error::Result;
use crate::http::{Timeouts, client, credentials};
pub use manifest::Fetched;
pub use name::{ImageName, same_repository};
use remembered::Remembered;

/// Every manifest type a tag may point at. ghcr.io answers 404 to an Accept list without the OCI
/// index type when the tag is multi-arch, so all four are always sent.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Distribution refuses manifests over 4 MiB; anything larger is not a manifest.
const MAX_MANIFEST: usize = 4 << 20;
/// Config blobs are small JSON documents; cap them so a hostile registry cannot exhaust memory.
const MAX_CONFIG: usize = 16 << 20;
/// Token responses are a few KiB.
const MAX_TOKEN: usize = 1 << 20;

/// A registry that accepts the connection and then says nothing for this long is not going to.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole exchange, body included: a registry trickling a byte a second ends here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client bound to one repository.
pub struct Registry {
    http: reqwest::Client,
    base: String,
    name: ImageName,
    credentials: Option<(String, Secret)>,
    /// The `Authorization` header value that last worked (or was issued); reused for every
    /// request of the process.
    authorization: Mutex<Option<HeaderValue>>,
    /// Whether the first request was prepared from a challenge known before any answer.
    guessed: Cell<bool>,
    /// The challenge this registry answered a previous process with (see remembered.rs).
    remembered: Remembered,
}

impl Registry {
    pub fn new(source: &Source) -> Result<Registry> {
        let name = ImageName::parse(&source.repository)?;
        let credentials = credentials(
            source.username.as_ref(),
            source.password.as_ref(),
            ["source.username", "source.password"],
            "",
        )?
        .map(|(user, password)| (user.clone(), password.clone()));
        let timeouts = Timeouts {
            connect: CONNECT_TIMEOUT,
            read: READ_TIMEOUT,
            total: Some(REQUEST_TIMEOUT),
        };
        let http = client(
            source.insecure,
            &source.ca_certs,
            "source.ca_certs",
            timeouts,
        )?;
        let scheme = if source.insecure { "http" } else { "https" };
        Ok(Registry {
            http,
            base: format!("{scheme}://{}/v2/{}", name.host, name.path),
            remembered: Remembered::new(scheme, &name.host),
            name,
            credentials,
            authorization: Mutex::new(None),
            guessed: Cell::new(false),
        })
    }

    pub fn name(&self) -> &ImageName {
        &self.name
    }

    /// HEAD a manifest: its digest, or `None` when the registry says it does not exist.
    ///
    /// Registries that leave out `Docker-Content-Digest` get a GET instead, and the digest is
    /// computed from the body.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        let what = format!("manifest {reference}");
        let resp = self
            .request(
                &what,
                Method::HEAD,
                &format!("manifests/{reference}"),
                MANIFEST_TYPES,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match resp.headers().get("docker-content-digest") {
                Some(value) => value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(Some)
                    .ok_or_else(|| {
                        self.invalid(
                            &what,
                            format!("Docker-Content-Digest {value:?} is not a sha256 digest"),
                        )
                    }),
                None => Ok(self.manifest(reference).await?.map(|m| m.digest)),
            },
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// GET a manifest by tag or digest. By digest, the body must hash to that digest.
    pub async fn manifest(&self, reference: &str) -> Result<Option<Fetched>> {
        let what = format!("manifest {reference}");
        let resp = self
            .request(
                &what,
                Method::GET,
                &format!("manifests/{reference}"),
                MANIFEST_TYPES,
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // By digest, the body must hash to it; by tag, to the digest the registry claims for
        // it, if it claims one.
        let claimed = reference.parse().ok().or_else(|| {
            resp.headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        let body = self.body(&what, resp, MAX_MANIFEST).await?;
        let digest = self.verified(&what, claimed, &body)?;
        Ok(Some(Fetched {
            digest,
            media_type,
            body,
        }))
    }

    /// GET a (small) blob by digest and verify it.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let what = format!("blob {digest}");
        let resp = self
            .request(&what, Method::GET, &format!("blobs/{digest}"), "*/*")
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp).await);
        }
        let body = self.body(&what, resp, MAX_CONFIG).await?;
        self.verified(&what, Some(digest.clone()), &body)?;
        Ok(body)
    }

    /// The config blob of an image manifest: labels, `created`, platform.
    pub async fn image_config(&self, image: &ImageManifest) -> Result<ImageConfiguration> {
        let digest = manifest::digest_of(image.config())
            .map_err(|m| self.invalid("image manifest", format!("config descriptor: {m}")))?;
        let blob = self.blob(&digest).await?;
        ImageConfiguration::from_reader(blob.as_slice()).map_err(|e| {
            self.invalid(
                &format!("blob {digest}"),
                format!("cannot read the image config: {e}"),
            )
        })
    }
}
