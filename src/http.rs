//! The HTTP client every server of the resource is reached with: the registry and its token
//! realm ([`crate::registry`]) and the Git server ([`crate::git`]). One place decides the
//! User-Agent, the timeouts, which redirects are followed and how TLS is verified, so a Git push
//! cannot be laxer than a check.

pub mod tls;

use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::config::{Certificates, Secret};
use crate::error::{Error, Result};

/// ghcr.io and S3-backed registries redirect blob (and some manifest) GETs to a storage host;
/// more hops than this are a loop.
pub const MAX_REDIRECTS: usize = 5;

/// Bounds on every request of a [`client`].
pub struct Timeouts {
    pub connect: Duration,
    /// Silence between two reads.
    pub read: Duration,
    /// The whole exchange, body included; `None` where a body may be large (a Git pack).
    pub total: Option<Duration>,
}

/// The HTTP client every server of the resource is reached with (registry, token realm, Git):
/// our User-Agent, `timeouts`, redirects by `redirect_policy`, TLS by `with_tls`. A TLS setup
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
/// loaded (see [`tls`]).
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

/// rustls's verdict on the server's certificate, if that is why a request failed. It travels
/// inside (possibly nested) `io::Error`s, whose `source()` skips it, hence `get_ref`.
pub fn certificate_error(e: &reqwest::Error) -> Option<String> {
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
pub fn root_cause(e: &reqwest::Error) -> String {
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
