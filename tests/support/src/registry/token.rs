//! The token endpoint of a registry in `auth: token` mode, answering like ghcr.io's (and served
//! on the registry's host, as ghcr.io's is: the fault proxy mounts it).
//!
//! The registry trusts a token when its JWT header's `x5c` certificate chains to the
//! `rootcertbundle` it was configured with, the signature verifies with that certificate's key
//! (ES256 here), `iss` and `aud` are the configured issuer and service, `nbf`/`exp` bracket now,
//! and `access` grants the action on the repository (Distribution 2.8,
//! `registry/auth/token/token.go`). The answer is `{"token": …}` with nothing else, as ghcr.io's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde::Serialize;

use super::Credentials;

/// `service` in the registry's challenge and `aud` in the tokens.
pub const SERVICE: &str = "testbed-registry";
/// `iss` of the tokens, which the registry is configured to trust.
pub const ISSUER: &str = "testbed-token-server";

/// Where the token endpoint is served (on the proxy's host, like ghcr.io's `/token`).
pub const PATH: &str = "/token";

pub struct TokenServer {
    state: Arc<TokenState>,
    ca_pem: String,
}

struct TokenState {
    signer: Signer,
    /// `None`: anyone gets a token (a public package). `Some`: Basic credentials are required.
    credentials: Option<Credentials>,
}

impl TokenServer {
    pub fn new(credentials: Option<Credentials>) -> TokenServer {
        let (signer, ca_pem) = Signer::new();
        TokenServer {
            state: Arc::new(TokenState {
                signer,
                credentials,
            }),
            ca_pem,
        }
    }

    /// The token endpoint, to be served at [`PATH`].
    pub fn router(&self) -> Router {
        Router::new()
            .route(PATH, get(issue))
            .with_state(self.state.clone())
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.state.credentials.as_ref()
    }

    /// The CA certificate the registry must trust (its `rootcertbundle`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A token for every action on `repository`, for the test harness's own requests.
    pub fn admin_token(&self, repository: &str) -> String {
        self.state.signer.sign(
            "testbed-admin",
            vec![Access {
                kind: "repository".into(),
                name: repository.into(),
                actions: vec!["pull".into(), "push".into(), "delete".into()],
            }],
        )
    }
}

/// `GET /token?service=…&scope=…[&scope=…]`, Basic credentials optional or required.
async fn issue(
    State(state): State<Arc<TokenState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic);
    let subject = match (&state.credentials, given) {
        (None, given) => given.map(|(user, _)| user).unwrap_or_default(),
        (Some(want), Some((user, password)))
            if user == want.username && password == want.password =>
        {
            user
        }
        (Some(_), _) => {
            return registry_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
        }
    };
    let url = reqwest::Url::parse(&format!("http://token/?{}", query.unwrap_or_default()))
        .expect("a query string parses");
    let mut access = Vec::new();
    for (key, value) in url.query_pairs() {
        match &*key {
            "service" if value != SERVICE => {
                return registry_error(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    &format!("unknown service {value:?}"),
                );
            }
            "scope" => match parse_scope(&value) {
                Some(a) => access.push(a),
                None => {
                    return registry_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_SCOPE",
                        &format!("cannot read scope {value:?}"),
                    );
                }
            },
            _ => {}
        }
    }
    Json(serde_json::json!({ "token": state.signer.sign(&subject, access) })).into_response()
}

fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    (status, Json(body)).into_response()
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.into(), password.into()))
}

/// `repository:owner/name:pull,push` → the access entry granting exactly that.
fn parse_scope(scope: &str) -> Option<Access> {
    let (resource, actions) = scope.rsplit_once(':')?;
    let (kind, name) = resource.split_once(':')?;
    Some(Access {
        kind: kind.into(),
        name: name.into(),
        actions: actions.split(',').map(str::to_string).collect(),
    })
}

#[derive(Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    /// A plain string: Distribution 2.8 reads `aud` as one string.
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// An ES256 key with a certificate issued by a throwaway CA.
struct Signer {
    key: EncodingKey,
    /// The signing certificate, base64 DER, for the JWT `x5c` header.
    x5c: Vec<String>,
    serial: AtomicU64,
}

impl Signer {
    /// A fresh CA and signing certificate; returns the signer and the CA's PEM.
    fn new() -> (Signer, String) {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testbed token CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, &ca_key);

        let key = KeyPair::generate().expect("signing key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        params
            .distinguished_name
            .push(DnType::CommonName, "testbed token signer");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("signing certificate");
        let signer = Signer {
            key: EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("ES256 key"),
            x5c: vec![STANDARD.encode(cert.der())],
            serial: AtomicU64::new(0),
        };
        (signer, ca_cert.pem())
    }

    fn sign(&self, subject: &str, access: Vec<Access>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(self.x5c.clone());
        let claims = Claims {
            iss: ISSUER,
            sub: subject,
            aud: SERVICE,
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: format!("{now}-{}", self.serial.fetch_add(1, Ordering::Relaxed)),
            access,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign token")
    }
}
