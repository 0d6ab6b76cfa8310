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

    /// Reads a body of at most `limit` bytes, chunk by chunk, so a huge or endless answer
    /// costs no more memory than the limit.
    pub(super) async fn body(
        &self,
        what: &str,
        mut resp: Response,
        limit: usize,
    ) -> Result<Vec<u8>> {
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

/// An error body is one JSON document of a few entries; more is not worth reading.
const MAX_ERROR: usize = 64 << 10;

/// `": CODE message"` from a registry error body (`{"errors":[{"code":…,"message":…}]}`), or "".
/// Read up to [`MAX_ERROR`] bytes, like every other body: an error answer can be as hostile as
/// any other.
pub(super) async fn error_detail(mut resp: Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    if resp.content_length().is_some_and(|n| n > MAX_ERROR as u64) {
        return String::new();
    }
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        if body.len() + chunk.len() > MAX_ERROR {
            return String::new();
        }
        body.extend_from_slice(&chunk);
    }
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
