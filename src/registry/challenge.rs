//! Answering a registry's `WWW-Authenticate` challenge.
//!
//! Registries announce how they want to be authenticated only when they refuse a request, so the
//! client goes straight to the manifest and answers the challenge it gets back (no `/v2/` ping).
//! For the two registries whose token realm is public knowledge (ghcr.io and Docker Hub), and for
//! any registry whose challenge a previous check in the same container saw (remembered.rs), the
//! credential is prepared before the first request, saving one round trip per check.

use reqwest::header::HeaderValue;
use serde::Deserialize;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
    ///
    /// ```
    /// use image_rollout_resource::registry::challenge::Challenge;
    /// let c = Challenge::parse(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#);
    /// assert_eq!(c, Some(Challenge::Bearer {
    ///     realm: "https://ghcr.io/token".into(),
    ///     service: Some("ghcr.io".into()),
    ///     scope: Some("repository:a/b:pull".into()),
    /// }));
    /// ```
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }

    /// Whether both challenges send the credentials to the same place the same way (the scope,
    /// which names the repository, aside).
    pub fn same_server(&self, other: &Challenge) -> bool {
        match (self, other) {
            (Challenge::Basic, Challenge::Basic) => true,
            (
                Challenge::Bearer { realm, service, .. },
                Challenge::Bearer {
                    realm: r,
                    service: s,
                    ..
                },
            ) => realm == r && service == s,
            _ => false,
        }
    }

    /// The realm a well-known registry will name in its challenge, so its token can be fetched
    /// before the first request. A wrong guess costs nothing but the token request: the normal
    /// challenge path still runs when the registry answers 401.
    pub fn known(host: &str) -> Option<Challenge> {
        let (realm, service) = match host {
            "ghcr.io" => ("https://ghcr.io/token", "ghcr.io"),
            "registry-1.docker.io" => ("https://auth.docker.io/token", "registry.docker.io"),
            _ => return None,
        };
        Some(Challenge::Bearer {
            realm: realm.into(),
            service: Some(service.into()),
            scope: None,
        })
    }
}

/// The `Authorization` value from a token endpoint's answer (`{"token": …}`, or OAuth2's
/// `{"access_token": …}`). Errors never include the body: it may hold a token.
pub fn bearer(body: &[u8]) -> Result<HeaderValue, &'static str> {
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|_| "the token response is not JSON")?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("the token response has no token")?;
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token has characters not allowed in a header")?;
    value.set_sensitive(true);
    Ok(value)
}

/// `key="quoted, value",key2=token` → pairs. Commas inside quotes (multi-action scopes such as
/// `repository:a:pull,push`) must not split.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        out.push((key, value.to_string()));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge_with_multi_action_scope() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            })
        );
    }

    #[test]
    fn basic_and_unknown_schemes() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        // A bearer challenge without a realm cannot be answered.
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn unquoted_values_and_spaces() {
        let c = Challenge::parse("bearer realm=https://r/token, service=svc");
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://r/token".into(),
                service: Some("svc".into()),
                scope: None
            })
        );
    }
}
