//! Reading what a registry answered: bodies capped in size (a huge or endless answer costs no
//! more memory than the cap), verified against their digest, and error answers turned into one
//! line with the registry's own code and message.

use reqwest::Response;
use serde::Deserialize;

use super::Registry;
use crate::config::Digest;
use crate::error::{Error, Result};
use crate::http::root_cause;

impl Registry {
    pub(super) fn verified(
        &self,
        what: &str,
        expected: Option<Digest>,
        body: &[u8],
    ) -> Result<Digest> {
        let actual = Digest::of(body);
        match expected {
            Some(expected) if expected != actual => Err(self.invalid(
                what,
                format!("content does not match its digest (got {actual}); the registry or a proxy altered it"),
            )),
            _ => Ok(actual),
        }
    }

    /// Reads a body of at most `limit` bytes ([`capped`]), naming what went wrong.
    pub(super) async fn body(&self, what: &str, resp: Response, limit: usize) -> Result<Vec<u8>> {
        capped(resp, limit).await.map_err(|cut| {
            let message = match cut {
                Cut::TooLarge => format!("response larger than {limit} bytes"),
                Cut::Failed { after, cause } => {
                    format!("reading the response failed after {after} bytes: {cause}")
                }
            };
            self.invalid(what, message)
        })
    }

    pub(super) async fn status_error(&self, what: &str, resp: Response) -> Error {
        let status = resp.status().as_u16();
        Error::Status {
            server: self.name.host.clone(),
            what: what.into(),
            status,
            detail: error_detail(resp).await,
        }
    }

    pub(super) fn invalid(&self, what: &str, message: String) -> Error {
        Error::InvalidResponse {
            server: self.name.host.clone(),
            what: what.into(),
            message,
        }
    }
}

/// Why [`capped`] stopped short of a whole body.
enum Cut {
    TooLarge,
    Failed { after: usize, cause: String },
}

/// Reads a body of at most `limit` bytes, chunk by chunk, so a huge or endless answer costs no
/// more memory than the limit (a declared `Content-Length` over it is refused before reading).
async fn capped(mut resp: Response, limit: usize) -> Result<Vec<u8>, Cut> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Cut::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > limit => return Err(Cut::TooLarge),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(Cut::Failed {
                    after: body.len(),
                    cause: root_cause(&e),
                });
            }
        }
    }
}

/// An error body is one JSON document of a few entries; more is not worth reading.
const MAX_ERROR: usize = 64 << 10;

/// `": CODE message"` from a registry error body (`{"errors":[{"code":…,"message":…}]}`), or "".
/// Read up to [`MAX_ERROR`] bytes, like every other body: an error answer can be as hostile as
/// any other.
pub(super) async fn error_detail(resp: Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(body) = capped(resp, MAX_ERROR).await else {
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
