//! What can go wrong, each variant a sentence a pipeline author can act on.
//!
//! Variants carry already-rendered causes rather than boxed sources: `Display` is the whole story
//! on one line, so the binaries print exactly one line and no `Caused by` chain. Nothing here ever
//! holds a password, token or kubeconfig.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JSON on stdin does not fit the request type (names the key path), or the step was
    /// started without the arguments Concourse passes.
    #[error("invalid request: {0}")]
    Request(String),

    /// The process could not do what every step needs: read stdin, start its runtime, listen for
    /// signals, or keep a worker thread running.
    #[error("{0}")]
    Process(String),

    /// A key parses but its value cannot be used.
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },

    /// One entry of a list key cannot be used: named `key[index]`, as the request's parser names
    /// a bad entry (`source.ca_certs[1]`).
    #[error("{key}[{index}]: {message}")]
    ConfigEntry {
        key: &'static str,
        index: usize,
        message: String,
    },

    /// The registry could not be reached at all.
    #[error(
        "registry {server}: cannot connect ({cause}); check source.repository and that the registry is reachable"
    )]
    Unreachable { server: String, cause: String },

    /// The server's TLS certificate did not verify.
    #[error(
        "registry {server}: its TLS certificate is not trusted ({cause}); give the CA that signed it in source.ca_certs"
    )]
    Untrusted { server: String, cause: String },

    /// Credentials missing or refused.
    #[error("registry {server}: {what}; check source.username and source.password")]
    Unauthorized { server: String, what: String },

    /// Any other unexpected HTTP answer, with the registry's own error code and message.
    #[error("registry {server}: {what}: HTTP {status}{detail}")]
    Status {
        server: String,
        what: String,
        status: u16,
        detail: String,
    },

    /// Still rate-limited or failing after the retry budget.
    #[error(
        "registry {server}: {what}: gave up after {attempts} attempts over {:.0?}: {last}",
        elapsed
    )]
    GaveUp {
        server: String,
        what: String,
        attempts: usize,
        elapsed: Duration,
        last: String,
    },

    /// The registry sent something we cannot use (bad JSON, wrong digest).
    #[error("registry {server}: {what}: {message}")]
    InvalidResponse {
        server: String,
        what: String,
        message: String,
    },

    /// `source.verify` does not accept any signature on the digest.
    #[error(
        "source.verify: refusing {reference}: {reason}; sign it (cosign sign) with a key or identity source.verify accepts"
    )]
    Unverified { reference: String, reason: String },

    /// A file `in`/`out` reads or writes.
    #[error("{path}: {message}")]
    File { path: String, message: String },

    /// The Kubernetes API refused or failed a call.
    #[error("kubernetes: {0}")]
    Cluster(String),

    /// The Git server refused or failed a fetch or push; names the server (never credentials).
    #[error("git {server}: {message}")]
    Git { server: String, message: String },

    /// A workload the put names has no pod template to put an image in.
    #[error("{0} has no pod template")]
    NoPodTemplate(String),

    /// SIGTERM or SIGINT (Concourse's abort) ended the put before it changed anything.
    #[error("{0}")]
    Aborted(String),

    /// One workload's rollout did not complete: names the workload, pod and reason.
    #[error("{0}")]
    NotRolledOut(String),

    /// The put failed after changing something: what failed, and what was undone (or why not).
    #[error("{0}")]
    DeployFailed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value from the request or a file, in backticks, with control characters escaped: an error
/// stays one line whatever the value holds.
pub fn quote(value: &str) -> String {
    format!("`{}`", one_line(value))
}

/// `text` with its control characters (line breaks above all) escaped as `\r`, `\u{1b}`, ….
/// For text a server or a library made up, which may echo anything it was given.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `a, b, c`: how lists of workloads, images, containers and files read in logs and messages.
pub fn comma<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The innermost cause of an error chain: the part that says what actually happened.
pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
