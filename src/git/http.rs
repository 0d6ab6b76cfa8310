//! Git's smart HTTP protocol for libgit2, spoken by reqwest.
//!
//! libgit2 is built without its own HTTPS (which would link OpenSSL next to rustls): it keeps the
//! pack protocol — negotiation, pack building, report-status — and this subtransport carries its
//! bytes. Each libgit2 request is one HTTP request: `GET …/info/refs?service=…` for the ref
//! advertisement, `POST …/git-upload-pack` or `…/git-receive-pack` with the buffered request body.
//! TLS, CA certificates and `insecure` are therefore exactly the registry's (same client setup).
//!
//! libgit2 calls in synchronously; the calls run on a blocking thread and drive the async client
//! with the runtime's handle.
//!
//! A redirect of the first request (`info/refs`: a renamed repository on GitHub, `/repo` to
//! `/repo.git`) moves the whole remote, as git does it (`update_url_from_redirect`): the POSTs
//! that follow go to the new place directly. Following a redirect of the POST instead would not
//! do: a 301 or 302 turns it into a GET, and the push would fail.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use git2::Remote;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use tokio::runtime::Handle;

use super::transport::{Connector, Failure};
use crate::error::root_cause;

/// How the put talks to one Git server.
pub struct Http {
    pub client: reqwest::Client,
    authorization: Option<HeaderValue>,
    handle: Handle,
    pub failure: Arc<Failure>,
    /// `(asked, now)`: the remote URL libgit2 asks for, and where its `info/refs` redirected to.
    moved: Mutex<Option<(String, String)>>,
}

impl Http {
    /// `authorization` goes with every request (`Basic …`, see [`crate::http::basic`]).
    pub fn new(
        client: reqwest::Client,
        authorization: Option<HeaderValue>,
        handle: Handle,
    ) -> Arc<Http> {
        Arc::new(Http {
            client,
            authorization,
            handle,
            failure: Arc::default(),
            moved: Mutex::default(),
        })
    }

    fn fail(&self, message: String) -> io::Error {
        self.failure.record(message)
    }

    /// Where requests for the remote `url` go, and whether that is still `url`'s origin.
    fn base(&self, url: &str) -> (String, bool) {
        match &*self.moved.lock().expect("not poisoned") {
            Some((asked, now)) if asked == url => (now.clone(), same_origin(url, now)),
            _ => (url.to_string(), true),
        }
    }

    /// After an `info/refs` answered from `got`: if a redirect brought it there, the remote
    /// `url` lives at `got` minus the `info/refs` part from now on.
    fn follow(&self, url: &str, base: &str, got: &reqwest::Url, service: &str) -> io::Result<()> {
        let tail = format!("/info/refs?service={service}");
        let got = got.as_str();
        if got == format!("{base}{tail}") {
            return Ok(());
        }
        let Some(now) = got.strip_suffix(&tail) else {
            return Err(self.fail(format!(
                "redirected to {got}, which is not a Git repository's info/refs; set source.git.uri to the repository's URL"
            )));
        };
        eprintln!("git: {url} moved to {now}; pushing there");
        *self.moved.lock().expect("not poisoned") = Some((url.to_string(), now.to_string()));
        Ok(())
    }
}

/// Whether `a` and `b` have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

impl Connector for Http {
    /// Stateless (`rpc`): every libgit2 request is one HTTP request.
    fn transport(self: Arc<Self>, remote: &Remote<'_>) -> Result<Transport, git2::Error> {
        Transport::smart(remote, true, Subtransport(self))
    }
}

struct Subtransport(Arc<Http>);

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        url: &str,
        service: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        Ok(Box::new(Stream {
            http: self.0.clone(),
            url: url.trim_end_matches('/').to_string(),
            service,
            body: Vec::new(),
            response: None,
            chunk: Bytes::new(),
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request: libgit2 writes the body, then reads the answer.
struct Stream {
    http: Arc<Http>,
    url: String,
    service: Service,
    body: Vec<u8>,
    response: Option<Response>,
    chunk: Bytes,
}

impl Stream {
    fn send(&mut self) -> io::Result<Response> {
        let (service, advertisement) = match self.service {
            Service::UploadPackLs => ("git-upload-pack", true),
            Service::UploadPack => ("git-upload-pack", false),
            Service::ReceivePackLs => ("git-receive-pack", true),
            Service::ReceivePack => ("git-receive-pack", false),
        };
        let http = &self.http;
        let (base, same_origin) = http.base(&self.url);
        let mut request = if advertisement {
            http.client
                .request(Method::GET, format!("{base}/info/refs?service={service}"))
        } else {
            http.client
                .request(Method::POST, format!("{base}/{service}"))
                .header(CONTENT_TYPE, format!("application/x-{service}-request"))
                .header(ACCEPT, format!("application/x-{service}-result"))
                .body(std::mem::take(&mut self.body))
        };
        // Credentials go where the user sent them: as for the redirect itself (reqwest drops
        // `Authorization` when the origin changes), never to another origin the server named.
        if let Some(auth) = http.authorization.as_ref().filter(|_| same_origin) {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = http
            .handle
            .block_on(request.send())
            .map_err(|e| http.fail(format!("cannot connect ({})", root_cause(&e))))?;
        let status = response.status();
        let write = service == "git-receive-pack";
        let denied = |m: String| http.fail(m);
        match status {
            StatusCode::UNAUTHORIZED if http.authorization.is_some() => {
                return Err(denied("credentials refused (HTTP 401); check source.git.username and source.git.password".into()));
            }
            StatusCode::UNAUTHORIZED => {
                return Err(denied("the server wants credentials (HTTP 401); set source.git.username and source.git.password".into()));
            }
            StatusCode::FORBIDDEN => {
                return Err(denied(format!(
                    "access denied (HTTP 403); the credentials need {} access to the repository",
                    if write { "write (push)" } else { "read" }
                )));
            }
            StatusCode::NOT_FOUND => {
                return Err(
                    http.fail("repository not found (HTTP 404); check source.git.uri".into())
                );
            }
            s if !s.is_success() => {
                return Err(http.fail(format!("{service}: HTTP {s}")));
            }
            _ => {}
        }
        if advertisement {
            http.follow(&self.url, &base, response.url(), service)?;
            let expected = format!("application/x-{service}-advertisement");
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if content_type != expected {
                return Err(http.fail(format!(
                    "not a smart-HTTP Git server (answered {content_type:?} instead of {expected}); check source.git.uri"
                )));
            }
        }
        Ok(response)
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() {
            self.response = Some(self.send()?);
        }
        while self.chunk.is_empty() {
            let response = self.response.as_mut().expect("sent above");
            let next = self.http.handle.block_on(response.chunk());
            match next {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(e) => {
                    return Err(self.http.fail(format!(
                        "connection lost while reading ({})",
                        root_cause(&e)
                    )));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
