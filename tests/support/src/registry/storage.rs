//! A stand-in for the storage host a registry redirects to (ghcr.io sends blob GETs to a
//! different host with a signed URL). Real registries on loopback cannot be made to redirect
//! this way, so it is in-process: it records what reached it — above all whether a credential
//! meant for the registry followed the redirect — and serves the real registry's content.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;

use super::proxy::{Forwarder, forward};

/// One request the storage host received: `METHOD /path` and every header, as sent.
#[derive(Debug, Clone)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

pub struct StorageHost {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StorageHost {
    /// Serves on a fresh loopback port, forwarding to the registry at `upstream` with its own
    /// `authorization` (whatever the client sent is recorded, then replaced).
    pub(super) async fn start(
        upstream: SocketAddr,
        http: reqwest::Client,
        authorization: Option<HeaderValue>,
    ) -> StorageHost {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let forwarder = Arc::new(Forwarder {
            upstream,
            scheme: "http",
            http,
        });
        let log = seen.clone();
        let router = Router::new().fallback(move |mut req: Request| {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            log.lock().expect("not poisoned").push(Seen {
                line: format!("{} {}", req.method(), req.uri().path()),
                headers,
            });
            req.headers_mut().remove(AUTHORIZATION);
            if let Some(value) = &authorization {
                req.headers_mut().insert(AUTHORIZATION, value.clone());
            }
            forward(forwarder.clone(), req)
        });
        StorageHost {
            addr: super::serve(router).await,
            seen,
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}
