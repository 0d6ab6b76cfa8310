//! The real Distribution registry (Debian's `docker-registry`, v2.8) on 127.0.0.1, one per
//! [`Registry`], in one of three modes: open, htpasswd basic auth, or `auth: token` with a token
//! server of ours that signs JWTs the way Distribution verifies them.
//!
//! Clients under test talk to it through a fault proxy ([`Registry::host`]), which logs every
//! request (so tests can count them) and injects the faults a healthy registry never produces.
//! Fixtures are pushed with the real `skopeo` straight to the registry, bypassing the proxy, so
//! they neither show up in the request log nor meet injected faults.

mod fixture;
mod proxy;
mod storage;
mod token;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::process::Server;

pub use fixture::{ImageSpec, Layout, Platform};
pub use proxy::{Fault, Times};
pub use storage::{Seen, StorageHost};

/// Every manifest media type, as any client following a tag must accept.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A username and password the registry (or its token server) accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// How the registry authenticates pulls and pushes.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No authentication at all.
    Open,
    /// `auth: htpasswd` (a bcrypt htpasswd file): `WWW-Authenticate: Basic`.
    Basic(Credentials),
    /// `auth: token`: `WWW-Authenticate: Bearer realm=<our token server>`. With credentials the
    /// token server demands them (a private ghcr.io package); without, it hands anyone a token
    /// (a public one).
    Token(Option<Credentials>),
}

/// A running registry with its fault proxy (and token server, in token mode). Everything stops
/// when it is dropped, panics included.
pub struct Registry {
    mode: Mode,
    /// With [`Registry::start_tls`]: the CA that signed the proxy's certificate.
    ca_pem: Option<String>,
    // Field order is drop order: the servers and the registry process go before the directory
    // that holds their files.
    runtime: tokio::runtime::Runtime,
    proxy: proxy::Proxy,
    process: Process,
    http: reqwest::Client,
    backend: Backend,
    dir: TempDir,
}

/// The registry behind the proxy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Debian's Distribution 2.8 (`docker-registry`): no referrers API.
    Distribution,
    /// go-containerregistry's registry with the referrers API on.
    Referrers,
}

/// [`Auth`], with the token server in token mode.
enum Mode {
    Open,
    Basic(Credentials),
    Token(token::TokenServer),
}

impl Registry {
    /// A registry whose proxy speaks plain http (clients use `insecure: true`).
    pub fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, false, None)
    }

    /// A registry whose proxy (the registry API and, in token mode, the token realm) speaks
    /// https with a certificate for 127.0.0.1 from a CA of its own ([`Registry::ca_pem`]), as a
    /// registry behind a company CA does.
    pub fn start_tls(auth: Auth) -> Registry {
        Registry::start_with(auth, true, None)
    }

    /// A registry on https, like [`Registry::start_tls`], whose token challenge names `realm`
    /// instead of its own token server (a misconfigured or hostile registry).
    pub fn start_tls_with_realm(auth: Auth, realm: &str) -> Registry {
        Registry::start_with(auth, true, Some(realm))
    }

    /// A plain-http open registry that serves the OCI referrers API: go-containerregistry's
    /// (`referrers-registry`, built by scripts/tools.sh), in memory, behind the same proxy.
    /// Distribution 2.8 answers that API 404, so [`Registry::start`] is the tag-schema registry.
    pub fn start_referrers() -> Registry {
        Registry::start_backend(Auth::Open, false, None, Backend::Referrers)
    }

    fn start_with(auth: Auth, tls: bool, realm: Option<&str>) -> Registry {
        Registry::start_backend(auth, tls, realm, Backend::Distribution)
    }

    fn start_backend(auth: Auth, tls: bool, realm: Option<&str>, backend: Backend) -> Registry {
        install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mode = match auth {
            Auth::Open => Mode::Open,
            Auth::Basic(credentials) => Mode::Basic(credentials),
            Auth::Token(credentials) => Mode::Token(token::TokenServer::new(credentials)),
        };
        // The proxy starts first: in token mode it also serves the token endpoint, on the same
        // host as the registry API as ghcr.io does, and the registry's config names it.
        let addr = free_port();
        let token_router = match &mode {
            Mode::Token(server) => Some(server.router()),
            _ => None,
        };
        let pki = tls.then(crate::cluster::pki::Pki::new);
        let server_config = pki.as_ref().map(|pki| {
            let serving = pki.serving("127.0.0.1");
            let cert = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).expect("cert");
            let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).expect("key");
            Arc::new(
                rustls::ServerConfig::builder()
                    .with_no_client_auth()
                    .with_single_cert(vec![cert], key)
                    .expect("server config"),
            )
        });
        let proxy = runtime.block_on(proxy::Proxy::start(addr, token_router, server_config));
        let scheme = if tls { "https" } else { "http" };
        let auth_config = match &mode {
            Mode::Open => String::new(),
            Mode::Basic(c) => {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, bcrypt_htpasswd(c)).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: testbed\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Mode::Token(server) => {
                let bundle = dir.path().join("token-ca.pem");
                std::fs::write(&bundle, server.ca_pem()).expect("write root cert bundle");
                let realm = realm.map_or_else(
                    || format!("{scheme}://{}{}", proxy.addr, token::PATH),
                    str::to_string,
                );
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    token::SERVICE,
                    token::ISSUER,
                    bundle.display()
                )
            }
        };
        let process = Process::start(dir.path(), addr, &auth_config, backend);
        Registry {
            mode,
            ca_pem: pki.map(|pki| pki.ca_pem()),
            runtime,
            proxy,
            process,
            http: http_client(),
            backend,
            dir,
        }
    }

    /// `127.0.0.1:PORT` of the fault proxy: what clients under test should use.
    pub fn host(&self) -> String {
        self.proxy.addr.to_string()
    }

    /// `127.0.0.1:PORT/<name>` through the proxy, as `source.repository` spells it.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The PEM CA certificate a client must trust for a [`Registry::start_tls`] registry.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The credentials the registry accepts, if it wants any.
    pub fn credentials(&self) -> Option<&Credentials> {
        match &self.mode {
            Mode::Open => None,
            Mode::Basic(c) => Some(c),
            Mode::Token(server) => server.credentials(),
        }
    }

    /// Every request that reached the proxy (the token endpoint included) since the last reset,
    /// in order, as `METHOD /path STATUS` (the query string left out).
    pub fn requests(&self) -> Vec<String> {
        self.proxy.log.entries()
    }

    /// How long the proxy took to answer those requests, summed: the time a client spent
    /// waiting on the registry (and the token server), forwarding included.
    pub fn answering(&self) -> Duration {
        self.proxy.log.answering()
    }

    pub fn reset_requests(&self) {
        self.proxy.log.reset()
    }

    /// Scripts a fault for the next requests through the proxy whose path starts with `path`
    /// (`/v2/` for the registry API, `/token` for the token endpoint). Faults queue up in order.
    pub fn inject(&self, path: &str, fault: Fault, times: Times) {
        self.proxy.inject(path, fault, times)
    }

    /// Pushes `layout` to `<name>:<tag>` with skopeo (all images of an index) and checks that
    /// the registry now serves the layout's own digest for the tag. Returns that digest.
    ///
    /// skopeo fetches its tokens from the token server too; the request log is cleared
    /// afterwards so that it holds the client's requests only.
    pub fn push(&self, layout: &Layout, name: &str, tag: &str) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--insecure-policy", "--preserve-digests"])
            .args(["--dest-tls-verify=false", "--all"])
            .env(
                "REGISTRY_AUTH_FILE",
                self.dir.path().join("skopeo-auth.json"),
            );
        if let Some(c) = self.credentials() {
            cmd.arg("--dest-creds")
                .arg(format!("{}:{}", c.username, c.password));
        }
        cmd.arg(format!(
            "oci:{}:{}",
            layout.path().display(),
            fixture::LAYOUT_TAG
        ))
        .arg(format!("docker://{}/{name}:{tag}", self.process.addr));
        let out = cmd
            .output()
            .expect("cannot run skopeo; install it with scripts/setup.sh");
        assert!(
            out.status.success(),
            "skopeo copy to {name}:{tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let served = self.digest(name, tag);
        assert_eq!(
            served.as_deref(),
            Some(layout.digest()),
            "the registry serves another digest for {name}:{tag} than the layout's"
        );
        self.reset_requests();
        layout.digest().to_string()
    }

    /// The registry's `Docker-Content-Digest` for `<name>:<reference>`, or `None` on 404.
    /// Asked directly, not through the proxy.
    pub fn digest(&self, name: &str, reference: &str) -> Option<String> {
        let resp = self.direct(Method::HEAD, name, reference);
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(
            resp.status().is_success(),
            "HEAD {name}:{reference}: {}",
            resp.status()
        );
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .expect("Distribution always sends Docker-Content-Digest");
        Some(digest.to_str().expect("ASCII digest").to_string())
    }

    /// Points `<name>:<tag>` at the manifest `<name>@<digest>` (one GET and one PUT straight to
    /// the registry, as `crane tag` does): hundreds of tags cost a second, not a skopeo each.
    /// Returns the tag's digest: `digest` itself, or with `distinct` that of a copy of the
    /// manifest annotated with the tag (same config and layers), so each tag is its own image.
    pub fn tag(&self, name: &str, digest: &str, tag: &str, distinct: bool) -> String {
        let manifest = self.direct(Method::GET, name, digest);
        assert!(
            manifest.status().is_success(),
            "GET {name}@{digest}: {}",
            manifest.status()
        );
        let media_type = manifest.headers()[CONTENT_TYPE].clone();
        let mut body = self
            .runtime
            .block_on(manifest.bytes())
            .expect("manifest body")
            .to_vec();
        if distinct {
            let mut json: serde_json::Value = serde_json::from_slice(&body).expect("JSON manifest");
            json["annotations"]["org.example.tag"] = tag.into();
            body = serde_json::to_vec(&json).expect("JSON");
        }
        let url = format!("http://{}/v2/{name}/manifests/{tag}", self.process.addr);
        let mut req = self
            .http
            .put(url)
            .header(CONTENT_TYPE, media_type)
            .body(body);
        if let Some(value) = self.admin_authorization(name) {
            req = req.header(AUTHORIZATION, value);
        }
        let resp = self
            .runtime
            .block_on(async { req.send().await })
            .unwrap_or_else(|e| panic!("registry at {}: {e}", self.process.addr));
        assert_eq!(
            resp.status(),
            reqwest::StatusCode::CREATED,
            "PUT {name}:{tag}"
        );
        resp.headers()["docker-content-digest"]
            .to_str()
            .expect("ASCII digest")
            .to_string()
    }

    /// Deletes the manifest `<name>@<digest>` (and so every tag pointing at it).
    pub fn delete(&self, name: &str, digest: &str) {
        let resp = self.direct(Method::DELETE, name, digest);
        assert_eq!(
            resp.status(),
            reqwest::StatusCode::ACCEPTED,
            "DELETE {name}@{digest}"
        );
    }

    /// A second server on another port, standing in for the storage host ghcr.io redirects blob
    /// GETs to: it serves `<name>`'s content from the registry with a credential of its own (as
    /// a signed URL would carry one) and records every request it receives, headers included.
    /// Point [`Fault::Redirect`] at its address.
    pub fn storage_host(&self, name: &str) -> StorageHost {
        let authorization = self.admin_authorization(name);
        self.runtime.block_on(StorageHost::start(
            self.process.addr,
            http_client(),
            authorization,
        ))
    }

    /// The `Authorization` value that lets the test itself read and write `<name>`.
    fn admin_authorization(&self, name: &str) -> Option<HeaderValue> {
        let value = match &self.mode {
            Mode::Open => return None,
            Mode::Basic(c) => {
                use base64::Engine as _;
                let pair = format!("{}:{}", c.username, c.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Mode::Token(server) => format!("Bearer {}", server.admin_token(name)),
        };
        Some(HeaderValue::from_str(&value).expect("header"))
    }

    /// One request on `/v2/<name>/manifests/<reference>` straight to the registry, with whatever
    /// credential its mode wants.
    /// Attaches `bundle` (a Sigstore bundle's JSON, as cosign would push it) to `subject` of
    /// `name` as an OCI referrer: the bundle blob, the empty config, and a manifest whose
    /// `subject` is `subject`; on Distribution, which has no referrers API, also the tag schema's
    /// index, as cosign updates it. For bundles cosign would not push (one made for another
    /// digest, a tampered one). Open registries only.
    pub fn attach_bundle(&self, name: &str, subject: &str, bundle: &[u8]) {
        const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
        const EMPTY: &str = "application/vnd.oci.empty.v1+json";
        const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
        const INDEX: &str = "application/vnd.oci.image.index.v1+json";
        let sha = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
        let subject_size = self.manifest_bytes(name, subject).len();
        for blob in [b"{}".as_slice(), bundle] {
            self.upload(name, blob, &sha(blob));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": BUNDLE,
            "config": {"mediaType": EMPTY, "digest": sha(b"{}"), "size": 2},
            "layers": [{"mediaType": BUNDLE, "digest": sha(bundle), "size": bundle.len()}],
            "subject": {"mediaType": MANIFEST, "digest": subject, "size": subject_size},
        }))
        .unwrap();
        let digest = sha(&manifest);
        self.put_manifest(name, &digest, MANIFEST, manifest.clone());
        if self.backend == Backend::Distribution {
            let tag = subject.replacen(':', "-", 1);
            let mut index: serde_json::Value = match self.digest(name, &tag) {
                Some(_) => serde_json::from_slice(&self.manifest_bytes(name, &tag)).unwrap(),
                None => {
                    serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []})
                }
            };
            index["manifests"].as_array_mut().unwrap().push(serde_json::json!(
                {"mediaType": MANIFEST, "artifactType": BUNDLE, "digest": digest, "size": manifest.len()}
            ));
            self.put_manifest(name, &tag, INDEX, serde_json::to_vec(&index).unwrap());
        }
        self.reset_requests();
    }

    /// The manifest `<name>:<reference>` as the registry stores it, asked directly.
    pub fn manifest_bytes(&self, name: &str, reference: &str) -> Vec<u8> {
        let resp = self.direct(Method::GET, name, reference);
        assert!(
            resp.status().is_success(),
            "GET {name}:{reference}: {}",
            resp.status()
        );
        self.runtime.block_on(resp.bytes()).unwrap().to_vec()
    }

    /// A blob upload in two requests (`POST …/blobs/uploads/`, then `PUT` of the whole blob to
    /// the location it gives), which every registry serves; directly, not through the proxy.
    fn upload(&self, name: &str, blob: &[u8], digest: &str) {
        let url = format!("http://{}/v2/{name}/blobs/uploads/", self.process.addr);
        let resp = self.send(self.http.post(url));
        let location = resp.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.process.addr)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .http
            .put(format!("{location}{separator}digest={digest}"))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(blob.to_vec());
        self.send(put);
    }

    /// `PUT` of a manifest (or an index) to `<name>:<reference>`, directly.
    fn put_manifest(&self, name: &str, reference: &str, media_type: &str, body: Vec<u8>) {
        let url = format!(
            "http://{}/v2/{name}/manifests/{reference}",
            self.process.addr
        );
        self.send(
            self.http
                .put(url)
                .header(CONTENT_TYPE, media_type)
                .body(body),
        );
    }

    fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let resp = self
            .runtime
            .block_on(async { request.send().await })
            .expect("registry");
        let status = resp.status();
        assert!(status.is_success(), "{status}: {:?}", resp.headers());
        resp
    }

    fn direct(&self, method: Method, name: &str, reference: &str) -> reqwest::Response {
        let url = format!(
            "http://{}/v2/{name}/manifests/{reference}",
            self.process.addr
        );
        let mut req = self
            .http
            .request(method, url)
            .header(ACCEPT, MANIFEST_TYPES);
        if let Some(value) = self.admin_authorization(name) {
            req = req.header(AUTHORIZATION, value);
        }
        // reqwest arms its timeout when the request is sent, which needs the runtime's context.
        self.runtime
            .block_on(async { req.send().await })
            .unwrap_or_else(|e| panic!("registry at {}: {e}", self.process.addr))
    }
}

/// reqwest is built without a default TLS crypto provider (the project pins ring); a client
/// cannot be built until one is installed for the process.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for talking to loopback servers: no proxies from the environment, no redirects.
fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

fn bcrypt_htpasswd(c: &Credentials) -> Vec<u8> {
    let out = Command::new("htpasswd")
        .args(["-Bbn", &c.username, &c.password])
        .output()
        .expect("cannot run htpasswd; install apache2-utils with scripts/setup.sh");
    assert!(out.status.success(), "htpasswd failed");
    out.stdout
}

/// The `docker-registry serve` child process, stopped on drop (and killed with the test process
/// however that ends, see [`crate::process`]).
struct Process {
    server: Server,
    addr: SocketAddr,
}

impl Process {
    /// Starts the registry on `addr`, found free by binding and releasing it: should another
    /// process take the port in between, the registry exits and `ensure_running` below reports
    /// it with the registry's log.
    fn start(dir: &Path, addr: SocketAddr, auth_config: &str, backend: Backend) -> Process {
        if backend == Backend::Referrers {
            let binary = crate::tools_bin().join("referrers-registry");
            let server = Server::start(
                "referrers-registry",
                &binary,
                vec![addr.to_string()],
                &[],
                &dir.join("registry.log"),
            );
            return Process::listening(server, addr);
        }
        let storage = dir.join("storage");
        let storage = storage.display();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                r#"version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: testbed
health:
  storagedriver:
    enabled: false
{auth_config}"#
            ),
        )
        .expect("write registry config");
        let server = Server::start(
            "docker-registry",
            Path::new("docker-registry"),
            vec!["serve".into(), config.display().to_string()],
            &[],
            &dir.join("registry.log"),
        );
        Process::listening(server, addr)
    }

    /// Waits until `server` listens on `addr`.
    fn listening(mut server: Server, addr: SocketAddr) -> Process {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            server.ensure_running();
            if TcpStream::connect(addr).is_ok() {
                // Listening, unless another process holds the port and ours is exiting.
                std::thread::sleep(Duration::from_millis(20));
                server.ensure_running();
                return Process { server, addr };
            }
            assert!(
                Instant::now() < deadline,
                "the registry does not listen on {addr} after 20s; the end of its log:\n{}",
                server.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.server.stop(Duration::ZERO);
    }
}

/// Serves `router` on a fresh loopback port, on the runtime this is called from.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    // TCP_NODELAY as Go's and nginx's servers set it (see serve_tls): else the second request on
    // a kept-alive connection waits for the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Serves `router` over TLS on a fresh loopback port, on the runtime this is called from.
async fn serve_tls(router: axum::Router, tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // As Go's and nginx's servers do: without it, TLS records written apart (handshake,
            // headers, body) meet the client's delayed ACK and an answer waits ~40 ms.
            let _ = tcp.set_nodelay(true);
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends its handshake; nothing to serve.
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A loopback address with a port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
}
