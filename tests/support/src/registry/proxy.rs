//! A fault proxy in front of the real registry.
//!
//! It exists only for what a healthy Distribution registry never does on its own: rate limiting
//! (429 with `Retry-After`), transient 503s, answers without `Docker-Content-Digest` (as some
//! registries and caching proxies send), corrupted bodies, redirects to another host (as ghcr.io
//! answers blob GETs), and hostile or broken servers: silence, trickling, endless, truncated or
//! invalid bodies, a `Content-Length` that lies. Everything else is forwarded unchanged, so the
//! behaviour under test is the real server's. It also logs every request, which is how tests
//! count the requests a `check` costs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;

/// What the proxy does to one request instead of forwarding it faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `status` (429, 503, …) without asking the registry, with `Retry-After: <secs>`
    /// when given and a registry-style error body.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Forward, then drop `Docker-Content-Digest` from the answer.
    StripDigest,
    /// Forward, then replace the body with bytes that are not what was asked for.
    Garbage,
    /// Answer a request that carries `Authorization` with `307 Temporary Redirect` to the same
    /// path and query on `host:port`; forward the others.
    Redirect(SocketAddr),
    /// Accept the request and never answer.
    Hang,
    /// Answer 200 at once, then send the body one byte a second.
    Trickle,
    /// Answer 200 with an endless body (no `Content-Length`): 1 GiB of JSON-looking bytes.
    Huge,
    /// Answer `status` (an error) with the same endless body: an error answer is read too, for
    /// the registry's own error message.
    HugeError(u16),
    /// Forward, then send half the body under the full `Content-Length` and close the connection.
    Truncate,
    /// Forward, then claim half the body's length in `Content-Length` (the rest is sent but
    /// never belongs to the answer).
    ShortLength,
    /// Forward, then cut the body to half (invalid JSON) and drop `Docker-Content-Digest`, as a
    /// broken cache would.
    InvalidJson,
    /// Serve a tags list (`/v2/<name>/tags/list`) in pages of this many tags, each linking the
    /// next with `Link: <…?n=…&last=…>; rel="next"` as ghcr.io, Docker Hub and Distribution 3 do,
    /// whatever `n` the client asked for (they cap it too). Distribution 2.8 answers every tag at
    /// once, so paging is the one behaviour of theirs it cannot show.
    Paginate(usize),
}

/// How many requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Next(usize),
    Always,
}

/// Requests seen, in order, as `METHOD /path STATUS`, and how long answering them took.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Log>>);

#[derive(Debug, Default)]
struct Log {
    lines: Vec<String>,
    answering: Duration,
}

impl RequestLog {
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").lines.clone()
    }

    /// The time between each request's arrival and its answer, summed: the registry's (and the
    /// token server's) share of a client's wall time, the same whichever client asks.
    pub fn answering(&self) -> Duration {
        self.0.lock().expect("not poisoned").answering
    }

    pub fn reset(&self) {
        *self.0.lock().expect("not poisoned") = Log::default();
    }

    /// `router`, logging every request it answers into this log.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), record))
    }
}

async fn record(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let line = format!("{} {}", req.method(), req.uri().path());
    let started = Instant::now();
    let resp = next.run(req).await;
    let mut log = log.0.lock().expect("not poisoned");
    log.answering += started.elapsed();
    log.lines.push(format!("{line} {}", resp.status().as_u16()));
    resp
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub log: RequestLog,
    faults: Arc<Faults>,
}

/// Scripted faults, each for requests whose path starts with a prefix; the first entry that
/// matches a request applies to it.
#[derive(Default)]
struct Faults(Mutex<Vec<(String, Fault, Times)>>);

impl Faults {
    fn next(&self, path: &str) -> Option<Fault> {
        let mut faults = self.0.lock().expect("not poisoned");
        let i = faults
            .iter()
            .position(|(p, _, _)| path.starts_with(p.as_str()))?;
        let (_, fault, times) = &mut faults[i];
        let fault = fault.clone();
        if let Times::Next(n) = times {
            *n -= 1;
            if *n == 0 {
                faults.remove(i);
            }
        }
        Some(fault)
    }
}

impl Proxy {
    /// Listens on a fresh loopback port (with `tls`, speaking https) and forwards to `upstream`,
    /// except for the routes of `local` (the token endpoint), which it serves itself.
    pub async fn start(
        upstream: SocketAddr,
        local: Option<Router>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Proxy {
        let log = RequestLog::default();
        let faults = Arc::new(Faults::default());
        let forwarder = Arc::new(Forwarder {
            upstream,
            scheme: if tls.is_some() { "https" } else { "http" },
            http: super::http_client(),
        });
        let router = local
            .unwrap_or_default()
            .fallback(move |req: Request| forward(forwarder.clone(), req))
            .layer(middleware::from_fn_with_state(faults.clone(), inject));
        let addr = match tls {
            Some(tls) => super::serve_tls(log.wrap(router), tls).await,
            None => super::serve(log.wrap(router)).await,
        };
        Proxy { addr, log, faults }
    }

    pub fn inject(&self, path: &str, fault: Fault, times: Times) {
        if times != Times::Next(0) {
            let mut faults = self.faults.0.lock().expect("not poisoned");
            faults.push((path.to_string(), fault, times));
        }
    }
}

/// Applies the scripted fault, if any, to one request.
async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let fault = faults.next(req.uri().path());
    let (path, query) = (
        req.uri().path().to_string(),
        req.uri().query().unwrap_or_default().to_string(),
    );
    match &fault {
        // As ghcr.io does: only an authenticated request is sent on to storage; without a
        // credential the registry's own 401 challenge comes back, so the client has one to leak.
        Some(Fault::Redirect(to)) if req.headers().contains_key(header::AUTHORIZATION) => {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let location = format!("http://{to}{path}");
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::Trickle) => {
            let bytes = futures::stream::unfold((), |()| async {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from_static(b"{")), ()))
            });
            return Body::from_stream(bytes).into_response();
        }
        Some(Fault::Huge | Fault::HugeError(_)) => {
            const CHUNK: usize = 64 << 10;
            let chunks = futures::stream::iter(0..(1usize << 30) / CHUNK)
                .map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'['; CHUNK])));
            let mut resp = Body::from_stream(chunks).into_response();
            if let Some(Fault::HugeError(status)) = fault {
                *resp.status_mut() = StatusCode::from_u16(status).expect("a valid status");
            }
            return resp;
        }
        _ => {}
    }
    if let Some(Fault::Status {
        status,
        retry_after,
    }) = fault
    {
        let status = StatusCode::from_u16(status).expect("a valid status");
        let code = status.canonical_reason().unwrap_or("error");
        let body = serde_json::json!({"errors": [{
            "code": code.to_uppercase().replace(' ', ""),
            "message": "injected by the test proxy",
        }]});
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    match fault {
        Some(Fault::Paginate(size)) => {
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            let list: serde_json::Value = serde_json::from_slice(&body).expect("a tags list");
            let tags: Vec<&str> = list["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .map(|t| t.as_str().expect("a tag"))
                .collect();
            let last = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("last="))
                .unwrap_or_default();
            // Distribution 2.8 lists in no particular order, but in the same one every time.
            let start = match last {
                "" => 0,
                last => tags
                    .iter()
                    .position(|t| *t == last)
                    .map_or(tags.len(), |i| i + 1),
            };
            let page = &tags[start..(start + size).min(tags.len())];
            let body = serde_json::json!({"name": list["name"], "tags": page});
            let mut resp = axum::Json(body).into_response();
            if start + size < tags.len() {
                let next = format!(
                    "<{path}?n={size}&last={}>; rel=\"next\"",
                    page[page.len() - 1]
                );
                resp.headers_mut().insert(
                    header::LINK,
                    HeaderValue::from_str(&next).expect("a header"),
                );
            }
            return resp;
        }
        Some(Fault::StripDigest) => {
            resp.headers_mut().remove("docker-content-digest");
        }
        Some(Fault::Garbage) => {
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            *resp.body_mut() = Body::from("<html>502 Bad Gateway</html>");
        }
        Some(Fault::Truncate | Fault::ShortLength | Fault::InvalidJson) => {
            let (mut parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = body.slice(..body.len() / 2);
            // hyper honours a Content-Length set by hand: it sends no more than it says, and
            // closes the connection when the body ends short of it.
            let (length, sent) = match fault {
                Some(Fault::Truncate) => (body.len(), half),
                Some(Fault::ShortLength) => (half.len(), body),
                _ => {
                    parts.headers.remove("docker-content-digest");
                    (half.len(), half)
                }
            };
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            // A pause, so hyper flushes what was sent before the stream ends (a short stream
            // makes hyper close the connection).
            let sent = futures::stream::iter([Ok::<_, std::io::Error>(sent)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Ok(Bytes::new())
                }),
            );
            return Response::from_parts(parts, Body::from_stream(sent));
        }
        _ => {}
    }
    resp
}

pub(super) struct Forwarder {
    pub(super) upstream: SocketAddr,
    /// How clients reach this server, `http` or `https`.
    pub(super) scheme: &'static str,
    pub(super) http: reqwest::Client,
}

/// Passes one request on to the registry and its answer back.
pub(super) async fn forward(forwarder: Arc<Forwarder>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{path}", forwarder.upstream);
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut headers = parts.headers;
    // Distribution writes the URLs it answers with (an upload's `Location`) for the host and
    // scheme it was asked on. Named as the client asked, the upload's PATCH and PUT come back
    // here; named as the registry's own address, a client would send them around this server,
    // and without its token, which clients send only to the host that asked for it.
    if let Some(host) = headers.remove(header::HOST) {
        headers.insert("x-forwarded-host", host);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(forwarder.scheme),
    );
    let upstream = forwarder
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(resp) => resp,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    let body = upstream.bytes().await.unwrap_or_default();
    // The body is re-framed by this server.
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONNECTION);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
