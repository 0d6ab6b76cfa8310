//! What a refusal (401) can say about the put's bearer token without trusting or showing it:
//! whether it has expired, and whether it is a Concourse ID token (README, "No long-lived cluster
//! credential"), whose fixes are settings of the pipeline's `idtoken` var source, not a new token.
//!
//! The claims are read, never verified (the API server does that) and never printed: a JWT is a
//! secret until it expires, and its claims name the pipeline that may deploy.
//!
//! One process runs one put with one identity, and the 401 surfaces deep inside a watch where only
//! a client is at hand, so the facts are kept for the process ([`remember`]) rather than threaded
//! through every call.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;

/// The claims that matter, when the token is a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// `exp`.
    pub expires: Option<SystemTime>,
    /// Concourse's `idtoken` var source signed it (it carries Concourse's `team` and `pipeline`
    /// claims, which a Kubernetes service-account token never has).
    pub concourse: bool,
}

impl Facts {
    /// Reads `token`'s claims; `None` when it is no JWT (an opaque token says nothing).
    pub fn read(token: &str) -> Option<Facts> {
        #[derive(Deserialize)]
        struct Claims {
            exp: Option<u64>,
            team: Option<serde_json::Value>,
            pipeline: Option<serde_json::Value>,
        }
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: Claims = serde_json::from_slice(&bytes).ok()?;
        Some(Facts {
            expires: claims.exp.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            concourse: claims.team.is_some() && claims.pipeline.is_some(),
        })
    }

    /// The fix for a 401 with this token, as a clause for the refusal's line.
    pub fn fix(&self, now: SystemTime) -> String {
        let expired = self.expires.and_then(|at| now.duration_since(at).ok());
        match (expired, self.concourse) {
            (Some(ago), true) => format!(
                "; the Concourse ID token expired {} ago, during the put: raise the idtoken var \
                 source's expires_in above the put's params.timeout (plus params.restore_timeout \
                 in GitOps mode)",
                seconds(ago)
            ),
            (Some(ago), false) => format!(
                "; the token expired {} ago: give one valid for the whole put",
                seconds(ago)
            ),
            (None, true) => {
                "; the API server does not accept this Concourse ID token: the idtoken \
                             var source's audience must be one of the audiences, and Concourse's \
                             external URL the issuer url, of a jwt entry of the API server's \
                             AuthenticationConfiguration (pipeline/apiserver-authentication.yaml)"
                    .into()
            }
            (None, false) => "; check the token or kubeconfig (it may have expired)".into(),
        }
    }
}

/// `1m 30s`: whole seconds are all a token's lifetime is counted in.
fn seconds(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
}

static FACTS: OnceLock<Option<Facts>> = OnceLock::new();

/// Keeps the facts of the token this process authenticates with, for [`fix`].
pub fn remember(facts: Option<Facts>) {
    let _ = FACTS.set(facts);
}

/// Says in one stderr line, before anything changes, when the remembered token expires before
/// the put may end (`may_take`, the `settings` that bound it): a rollout that takes longer fails
/// when the API server next checks the token, and can no longer be rolled back with it.
pub fn note_if_short_lived(may_take: Duration, settings: &str) {
    let Some(Facts {
        expires: Some(at),
        concourse,
    }) = FACTS.get().copied().flatten()
    else {
        return;
    };
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    if left < may_take {
        let raise = if concourse {
            "the idtoken var source's expires_in"
        } else {
            "the token's lifetime"
        };
        eprintln!(
            "note: the token expires in {}, sooner than {settings} ({}): a rollout that takes longer fails when the API server next checks the token; raise {raise}",
            seconds(left),
            seconds(may_take)
        );
    }
}

/// The fix for a 401, from the remembered token (the generic one without a JWT).
pub fn fix() -> String {
    let facts = FACTS.get().copied().flatten().unwrap_or(Facts {
        expires: None,
        concourse: false,
    });
    facts.fix(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"ES256"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn an_expired_concourse_token_names_expires_in_and_never_its_claims() {
        let facts = Facts::read(&jwt(serde_json::json!({
            "exp": 1000, "team": "main", "pipeline": "secret-pipeline-name", "sub": "main/secret-pipeline-name"
        })))
        .unwrap();
        let line = facts.fix(UNIX_EPOCH + Duration::from_secs(1090));
        assert!(
            line.contains("expired 1m 30s ago") && line.contains("expires_in"),
            "{line}"
        );
        assert!(!line.contains("secret-pipeline-name"), "{line}");
    }

    #[test]
    fn a_valid_concourse_token_refused_is_an_audience_or_issuer_mismatch() {
        let facts = Facts::read(&jwt(
            serde_json::json!({"exp": 2000, "team": "t", "pipeline": "p"}),
        ))
        .unwrap();
        let line = facts.fix(UNIX_EPOCH + Duration::from_secs(1000));
        assert!(
            line.contains("audience") && line.contains("AuthenticationConfiguration"),
            "{line}"
        );
    }

    #[test]
    fn a_service_account_token_and_an_opaque_one_get_the_generic_fix() {
        let sa = Facts::read(&jwt(
            serde_json::json!({"exp": 1000, "sub": "system:serviceaccount:ns:sa"}),
        ))
        .unwrap();
        assert!(!sa.concourse);
        assert!(
            sa.fix(UNIX_EPOCH + Duration::from_secs(1060))
                .contains("the token expired 1m ago")
        );
        assert_eq!(Facts::read("not-a-jwt"), None);
    }
}
