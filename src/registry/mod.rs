//! A minimal OCI distribution (registry API v2) client: what `check` and `in` need and nothing
//! more — manifests by tag or digest, small blobs by digest, and the auth dance.
//!
//! Every request goes through [`Registry::request`], which owns retries (429, 5xx, connection
//! errors; `Retry-After` honoured; bounded in attempts and time) and authentication (answer a 401
//! challenge once, then reuse the credential for the rest of the process).

pub mod auth;
pub mod manifest;
pub mod reference;
mod remembered;
mod tls;

use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;

use crate::config::{Certificates, Digest, Secret, Source};
use crate::error::{Error, Result};
use auth::Challenge;
use reference::Reference;
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
/// ghcr.io and S3-backed registries redirect blob (and some manifest) GETs to a storage host;
/// more hops than this are a loop.
const MAX_REDIRECTS: usize = 5;

/// Where an image lives: the API host and the repository name on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The host (and port) to send API requests to, e.g. `ghcr.io` or `registry-1.docker.io`.
    pub host: String,
    /// The repository path on that host, e.g. `werdnum/family-assistant` or `library/alpine`.
    pub path: String,
}

impl ImageName {
    /// Parses `source.repository` the way docker does (`alpine` → Docker Hub's `library/alpine`).
    ///
    /// ```
    /// use image_rollout_resource::registry::ImageName;
    /// let n = ImageName::parse("alpine").unwrap();
    /// assert_eq!((n.host.as_str(), n.path.as_str()), ("registry-1.docker.io", "library/alpine"));
    /// assert!(ImageName::parse("ghcr.io/a/b:main").is_err());
    /// ```
    pub fn parse(repository: &str) -> Result<ImageName> {
        let bad = |message: String| Error::Config {
            key: "source.repository",
            message,
        };
        let reference: Reference = repository
            .parse()
            .map_err(|e| bad(format!("`{repository}` is not a valid repository: {e}")))?;
        if reference.digest.is_some() {
            return Err(bad(format!(
                "`{repository}` contains a digest; give the repository only (registry/name) and put the tag in source.tag"
            )));
        }
        if let Some(tag) = reference.tag {
            return Err(bad(format!(
                "`{repository}` contains the tag `{tag}`; give the repository only and set source.tag: {tag}"
            )));
        }
        // The grammar lets `Team/app` through as a Docker Hub name; no registry serves one.
        if reference.repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad(format!(
                "`{repository}`: repository names are lowercase"
            )));
        }
        let host = match reference.registry.as_str() {
            // Docker Hub's API host is not its name.
            "docker.io" => "registry-1.docker.io".to_string(),
            _ => reference.registry,
        };
        Ok(ImageName {
            host,
            path: reference.repository,
        })
    }
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub body: Vec<u8>,
}

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

/// Bounds on every request of a [`client`].
pub struct Timeouts {
    pub connect: Duration,
    /// Silence between two reads.
    pub read: Duration,
    /// The whole exchange, body included; `None` where a body may be large (a Git pack).
    pub total: Option<Duration>,
}

/// The HTTP client every server of the resource is reached with (registry, token realm, Git):
/// our User-Agent, `timeouts`, redirects by [`redirect_policy`], TLS by [`with_tls`]. A TLS setup
/// that fails names `ca_key`, where the certificates came from.
pub fn client(
    insecure: bool,
    ca_certs: &[Certificates],
    ca_key: &'static str,
    timeouts: Timeouts,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "image-rollout-resource/",
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        .redirect(redirect_policy(insecure));
    if let Some(total) = timeouts.total {
        builder = builder.timeout(total);
    }
    with_tls(builder, insecure, ca_certs)
        .build()
        .map_err(|e| config(ca_key, &format!("cannot set up TLS: {e}")))
}

/// A user name and a password (or token) for one server: both or neither. `keys` are theirs as
/// the request spells them (`source.username`, `source.password`); `hint` ends the complaint
/// about a missing user name.
pub fn credentials<'a>(
    username: Option<&'a String>,
    password: Option<&'a Secret>,
    keys: [&'static str; 2],
    hint: &str,
) -> Result<Option<(&'a String, &'a Secret)>> {
    let [user_key, password_key] = keys;
    match (username, password) {
        (Some(user), Some(password)) => Ok(Some((user, password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(config(
            password_key,
            &format!("is required with {user_key}"),
        )),
        (None, Some(_)) => Err(config(
            user_key,
            &format!("is required with {password_key}{hint}"),
        )),
    }
}

/// TLS by rustls with the extra `ca_certs`; with `insecure` nothing is verified, so no roots are
/// loaded (see tls.rs).
fn with_tls(
    builder: reqwest::ClientBuilder,
    insecure: bool,
    ca_certs: &[Certificates],
) -> reqwest::ClientBuilder {
    if insecure {
        builder.danger_accept_invalid_certs(true)
    } else {
        let extra: Vec<_> = ca_certs.iter().flat_map(|c| c.der()).cloned().collect();
        builder.tls_backend_preconfigured(tls::client_config(&extra))
    }
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

    fn verified(&self, what: &str, expected: Option<Digest>, body: &[u8]) -> Result<Digest> {
        let actual = Digest::of(body);
        match expected {
            Some(expected) if expected != actual => Err(self.invalid(
                what,
                format!("content does not match its digest (got {actual}); the registry or a proxy altered it"),
            )),
            _ => Ok(actual),
        }
    }

    /// Reads a body of at most `limit` bytes, chunk by chunk, so a huge or endless answer
    /// costs no more memory than the limit.
    async fn body(&self, what: &str, mut resp: Response, limit: usize) -> Result<Vec<u8>> {
        let too_large = || self.invalid(what, format!("response larger than {limit} bytes"));
        let declared = resp.content_length();
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            self.invalid(
                what,
                format!(
                    "reading the response failed after {} bytes: {}",
                    body.len(),
                    root_cause(&e)
                ),
            )
        })? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Sends one logical request: retries transient failures, answers one auth challenge.
    async fn request(
        &self,
        what: &str,
        method: Method,
        path: &str,
        accept: &str,
    ) -> Result<Response> {
        let url = format!("{}/{path}", self.base);
        let refused = self.answer_before_asked().await;
        let resp = self.send(what, &method, &url, accept).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| Error::Unauthorized {
                server: self.name.host.clone(),
                what: format!("{what}: HTTP 401 without a usable WWW-Authenticate challenge"),
            })?;
        // The credentials were refused by this very realm a moment ago: asking again would
        // only repeat the refusal.
        if let Some((guess, error)) = refused
            && guess.same_server(&challenge)
        {
            return Err(error);
        }
        let value = self.answer(&challenge, Attempts::Retried).await?;
        *self.authorization.lock().expect("not poisoned") = Some(value);
        let resp = self.send(what, &method, &url, accept).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let detail = error_detail(resp).await;
            return Err(Error::Unauthorized {
                server: self.name.host.clone(),
                what: format!("{what}: credentials refused (HTTP 401{detail})"),
            });
        }
        self.remembered.store(&challenge);
        Ok(resp)
    }

    /// Before the process's first request: answers the challenge the registry is known to make
    /// (ghcr.io, Docker Hub) or made a previous process, so the first request carries its
    /// credential. One attempt, best effort: on any failure the ordinary 401 path runs, and a
    /// refusal is handed back so that path need not ask the same realm twice.
    async fn answer_before_asked(&self) -> Option<(Challenge, Error)> {
        if self.guessed.replace(true) {
            return None;
        }
        let challenge = Challenge::known(&self.name.host).or_else(|| self.remembered.load())?;
        match self.answer(&challenge, Attempts::Once).await {
            Ok(value) => {
                *self.authorization.lock().expect("not poisoned") = Some(value);
                None
            }
            Err(error @ Error::Unauthorized { .. }) => Some((challenge, error)),
            Err(_) => None,
        }
    }

    /// Turns a challenge into an `Authorization` header value.
    async fn answer(&self, challenge: &Challenge, attempts: Attempts) -> Result<HeaderValue> {
        match challenge {
            Challenge::Basic => {
                let Some((user, password)) = &self.credentials else {
                    return Err(Error::Unauthorized {
                        server: self.name.host.clone(),
                        what: "the registry requires a username and password".into(),
                    });
                };
                Ok(basic(user, password))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.name.path));
                let mut url = reqwest::Url::parse(realm).map_err(|_| {
                    self.invalid(
                        "auth challenge",
                        format!("token realm {realm:?} is not a URL"),
                    )
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = service {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", &scope);
                }
                let what = format!("token from {}", url.host_str().unwrap_or(realm));
                let request = || {
                    let req = self.http.get(url.clone());
                    match &self.credentials {
                        Some((user, password)) => req.header(AUTHORIZATION, basic(user, password)),
                        None => req,
                    }
                };
                let resp = match attempts {
                    Attempts::Retried => self.retrying(&what, request).await?,
                    Attempts::Once => {
                        let started = Instant::now();
                        classify(request().send().await)
                            .map_err(|e| self.final_error(&what, e, 1, started.elapsed()))?
                    }
                };
                match resp.status() {
                    s if s.is_success() => {}
                    s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                        let detail = error_detail(resp).await;
                        return Err(Error::Unauthorized {
                            server: self.name.host.clone(),
                            what: format!("{what}: refused (HTTP {}{detail})", s.as_u16()),
                        });
                    }
                    _ => return Err(self.status_error(&what, resp).await),
                }
                let body = self.body(&what, resp, MAX_TOKEN).await?;
                auth::bearer(&body).map_err(|message| self.invalid(&what, message.into()))
            }
        }
    }

    /// One registry API exchange with the current credential, retried while the failure is
    /// transient.
    async fn send(&self, what: &str, method: &Method, url: &str, accept: &str) -> Result<Response> {
        let authorization = self.authorization.lock().expect("not poisoned").clone();
        self.retrying(what, || {
            let req = self
                .http
                .request(method.clone(), url)
                .header(ACCEPT, accept);
            match &authorization {
                Some(value) => req.header(AUTHORIZATION, value.clone()),
                None => req,
            }
        })
        .await
    }

    /// Sends the request `build` makes, again while the failure is transient (429, 5xx, no
    /// connection); the final error counts the attempts and the time they took. Registry API
    /// and token requests both go through here, so both are retried alike.
    async fn retrying(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let started = Instant::now();
        let attempts = Cell::new(0);
        (|| async {
            attempts.set(attempts.get() + 1);
            classify(build().send().await)
        })
        .retry(backoff())
        // The backoff bounds the sleeping; this bounds the whole, slow attempts included (a
        // registry that answers every request after 29 s would otherwise hold a check for
        // minutes).
        .when(|e| {
            !matches!(e, Attempt::Untrusted(_) | Attempt::Final(_))
                && started.elapsed() < RETRY_BUDGET
        })
        .adjust(adjust)
        .notify(|e, d| notify(what, e, d))
        .await
        .map_err(|e| self.final_error(what, e, attempts.get(), started.elapsed()))
    }

    fn final_error(
        &self,
        what: &str,
        attempt: Attempt,
        attempts: usize,
        elapsed: Duration,
    ) -> Error {
        let server = self.name.host.clone();
        match attempt {
            Attempt::Unreachable(cause) => Error::Unreachable { server, cause },
            Attempt::Untrusted(cause) => Error::Untrusted { server, cause },
            Attempt::Final(message) => Error::InvalidResponse {
                server,
                what: what.into(),
                message,
            },
            Attempt::Transient { message, .. } => Error::GaveUp {
                server,
                what: what.into(),
                attempts,
                elapsed,
                last: message,
            },
        }
    }

    async fn status_error(&self, what: &str, resp: Response) -> Error {
        let status = resp.status().as_u16();
        Error::Status {
            server: self.name.host.clone(),
            what: what.into(),
            status,
            detail: error_detail(resp).await,
        }
    }

    fn invalid(&self, what: &str, message: String) -> Error {
        Error::InvalidResponse {
            server: self.name.host.clone(),
            what: what.into(),
            message,
        }
    }
}

fn config(key: &'static str, message: &str) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

/// `Authorization: Basic …` for a user name and password (marked sensitive: never logged).
pub fn basic(user: &str, password: &Secret) -> HeaderValue {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    let mut value =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header");
    value.set_sensitive(true);
    value
}

/// How hard to try a request.
#[derive(Clone, Copy)]
enum Attempts {
    /// Again while the failure is transient ([`Registry::retrying`]).
    Retried,
    /// Once: a guess, with the ordinary path behind it.
    Once,
}

/// Why one attempt failed. `Unreachable` and `Transient` are worth another attempt. `Untrusted`
/// and `Final` are not: a refused certificate would be refused again; a refused redirect, or a
/// registry that let a request time out (asking again could cost the full timeout each time).
/// Anything else is an answer.
#[derive(Debug)]
enum Attempt {
    /// The server's certificate was refused: the same certificate would be refused again.
    Untrusted(String),
    Unreachable(String),
    Final(String),
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

fn classify(result: reqwest::Result<Response>) -> Result<Response, Attempt> {
    let resp = result.map_err(|e| {
        if let Some(cause) = certificate_error(&e) {
            Attempt::Untrusted(cause)
        } else if e.is_timeout() {
            Attempt::Final(format!(
                "no complete answer in time (connect {CONNECT_TIMEOUT:?}, silence {READ_TIMEOUT:?}, whole request {REQUEST_TIMEOUT:?}); check that the registry is healthy"
            ))
        } else if e.is_redirect() {
            Attempt::Final(root_cause(&e))
        } else {
            Attempt::Unreachable(root_cause(&e))
        }
    })?;
    let status = resp.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(Attempt::Transient {
            message: format!("HTTP {}", status.as_u16()),
            retry_after,
        });
    }
    Ok(resp)
}

/// Follows at most [`MAX_REDIRECTS`] hops and never from https down to plain http (unless
/// `source.insecure`). Credentials never follow a redirect to another host: reqwest drops
/// `Authorization` whenever the scheme, host or port changes, which is what a registry that
/// hands out signed storage URLs (ghcr.io) expects.
fn redirect_policy(insecure: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if downgrade && !insecure {
            let host = attempt.url().host_str().unwrap_or_default().to_string();
            attempt.error(format!(
                "refused a redirect from https to plain http ({host})"
            ))
        } else {
            attempt.follow()
        }
    })
}

/// No new attempt starts after this long since the first.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter: 250 ms doubling to 8 s, at most 5 retries and 30 s of sleep.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(5)
        .with_total_delay(Some(Duration::from_secs(30)))
        .with_jitter()
}

/// Honour `Retry-After` (capped, so a registry cannot park a check for an hour) while the backoff
/// still allows another attempt.
fn adjust(attempt: &Attempt, planned: Option<Duration>) -> Option<Duration> {
    let planned = planned?;
    match attempt {
        Attempt::Transient {
            retry_after: Some(after),
            ..
        } => Some((*after).min(Duration::from_secs(20))),
        _ => Some(planned),
    }
}

fn notify(what: &str, attempt: &Attempt, delay: Duration) {
    let reason = match attempt {
        Attempt::Unreachable(cause) | Attempt::Untrusted(cause) | Attempt::Final(cause) => cause,
        Attempt::Transient { message, .. } => message,
    };
    eprintln!("{what}: {reason}; retrying in {:.1}s", delay.as_secs_f64());
}

/// rustls's verdict on the server's certificate, if that is why a request failed. It travels
/// inside (possibly nested) `io::Error`s, whose `source()` skips it, hence `get_ref`.
fn certificate_error(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = next {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = error.downcast_ref() {
            return Some(tls.to_string());
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The innermost cause of a reqwest error, e.g. "Connection refused (os error 111)". The outer
/// layers repeat the URL and add nothing a user can act on.
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        source.to_string()
    }
}

/// `": CODE message"` from a registry error body (`{"errors":[{"code":…,"message":…}]}`), or "".
async fn error_detail(resp: Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(body) = resp.bytes().await else {
        return String::new();
    };
    let Ok(parsed) = serde_json::from_slice::<Errors>(&body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| {
            [e.code.as_deref(), e.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}
