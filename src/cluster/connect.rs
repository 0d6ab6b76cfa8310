//! Connecting to the cluster from `source` (and the put's `params`): a kubeconfig (with an
//! optional context), a server + token + CA, or — with none of these — the pod's own service
//! account (in-cluster).
//!
//! Errors never echo the kubeconfig or token: YAML errors are reported by position only, because
//! a parser's snippet of the offending line could be a client key.

use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use serde_json::json;

use super::client::Cluster;
use crate::config::{OutParams, Source};
use crate::error::{Error, Result, root_cause};

/// Connects as `source` says, with `params.token` (a build's ID token) instead of `source.token`
/// when given. `params.namespace` beats `source.namespace`, which beats the kubeconfig context's
/// (or service account's) namespace, which beats `default`.
pub async fn connect(source: &Source, params: &OutParams) -> Result<Cluster> {
    let namespace = params.namespace.as_deref();
    let with_token;
    let source = match &params.token {
        Some(token) => {
            with_token = Source {
                token: Some(token.clone()),
                ..source.clone()
            };
            &with_token
        }
        None => source,
    };
    let config = config(source).await?;
    let server = config.cluster_url.to_string();
    let namespace = namespace
        .or(source.namespace.as_deref())
        .map(str::to_string)
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| {
        Error::Cluster(format!(
            "cannot set up a client for {server}: {}",
            root_cause(&e)
        ))
    })?;
    Ok(Cluster {
        client,
        namespace,
        server,
    })
}

async fn config(source: &Source) -> Result<Config> {
    let options = KubeConfigOptions {
        context: source.context.clone(),
        ..Default::default()
    };
    let kubeconfig = match (&source.kubeconfig, &source.server) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "source.server",
                "set either source.kubeconfig or source.server (+ token), not both",
            ));
        }
        (Some(text), None) => {
            let kubeconfig = Kubeconfig::from_yaml(text.expose()).map_err(|e| match e {
            KubeconfigError::Parse(_) => bad(
                "source.kubeconfig",
                "is not a kubeconfig (expected a kubeconfig's YAML; pipeline/rbac-readonly.yaml shows how to make one)",
            ),
            other => bad("source.kubeconfig", &other.to_string()),
        })?;
            check_certificates(&kubeconfig, source.context.as_deref())?;
            if !source.allow_unused_credentials {
                refuse_unused_credentials(&kubeconfig, source.context.as_deref())?;
            }
            kubeconfig
        }

        (None, Some(server)) => {
            if source.context.is_some() {
                return Err(bad("source.context", "only applies with source.kubeconfig"));
            }
            let token = source.token.as_ref().ok_or_else(|| {
                bad(
                    "source.token",
                    "is required with source.server (or params.token)",
                )
            })?;
            super::token::remember(super::token::Facts::read(token.expose()));
            // The same path as a kubeconfig file: one way to load, one set of TLS rules.
            let ca = source
                .certificate_authority
                .as_ref()
                .map(|ca| base64::engine::general_purpose::STANDARD.encode(ca.pem()));
            serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "source", "cluster": {
                    "server": server,
                    "certificate-authority-data": ca,
                    "insecure-skip-tls-verify": source.insecure_skip_tls_verify,
                }}],
                "users": [{"name": "source", "user": {"token": token.expose()}}],
                "contexts": [{"name": "source", "context": {"cluster": "source", "user": "source"}}],
                "current-context": "source",
            }))
            .map_err(|_| bad("source.server", "cannot build a client configuration from server, token and certificate_authority"))?
        }
        (None, None) => {
            if source.token.is_some() || source.certificate_authority.is_some() {
                return Err(bad(
                    "source.server",
                    "is required with source.token / source.certificate_authority",
                ));
            }
            return Config::incluster().map_err(|e| {
                bad(
                    "source.kubeconfig",
                    &format!(
                        "no cluster credentials: set source.kubeconfig, or source.server and source.token, or run the worker in a pod with a service account ({e})"
                    ),
                )
            });
        }
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            let key = if source.kubeconfig.is_some() {
                "source.kubeconfig"
            } else {
                "source.certificate_authority"
            };
            bad(key, &format!("unusable: {}", e))
        })?;
    if source.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    Ok(config)
}

/// The certificates embedded in the kubeconfig for the context in use (its cluster's CA, its
/// user's client certificate) must be PEM certificates: kube would otherwise drop what it cannot
/// read and fail later with an unrelated TLS error. Contexts not in use are left alone.
fn check_certificates(kubeconfig: &Kubeconfig, context: Option<&str>) -> Result<()> {
    let name = context.or(kubeconfig.current_context.as_deref());
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == name)
        .and_then(|c| c.context.as_ref())
    else {
        // kube reports a missing context itself.
        return Ok(());
    };
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.as_deref())
        .map(|data| {
            (
                format!("cluster `{}`", context.cluster),
                "certificate-authority-data",
                data,
            )
        });
    let user = context.user.as_deref().and_then(|user| {
        kubeconfig
            .auth_infos
            .iter()
            .find(|u| u.name == user)
            .and_then(|u| u.auth_info.as_ref())
            .and_then(|u| u.client_certificate_data.as_deref())
            .map(|data| (format!("user `{user}`"), "client-certificate-data", data))
    });
    for (owner, field, data) in cluster.into_iter().chain(user) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| {
                bad(
                    "source.kubeconfig",
                    &format!("{owner}: {field} is not base64"),
                )
            })?;
        crate::pem::certificates(&pem)
            .map_err(|m| bad("source.kubeconfig", &format!("{owner}: {field} {m}")))?;
    }
    Ok(())
}

/// A kubeconfig holds the credentials of the user its context uses, and no others: a file made by
/// copying an admin's config and switching the context would otherwise hand the admin's key to
/// whoever can read the pipeline's var, while the put looked read-only. Names the users and the
/// kinds of credential, never their values.
fn refuse_unused_credentials(kubeconfig: &Kubeconfig, context: Option<&str>) -> Result<()> {
    let name = context.or(kubeconfig.current_context.as_deref());
    let used = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == name)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.as_deref());
    let unused: Vec<String> = kubeconfig
        .auth_infos
        .iter()
        .filter(|u| Some(u.name.as_str()) != used)
        .filter_map(|u| {
            let a = u.auth_info.as_ref()?;
            let held: Vec<&str> = [
                ("password", a.password.is_some()),
                ("token", a.token.is_some()),
                ("tokenFile", a.token_file.is_some()),
                ("client-certificate", a.client_certificate.is_some()),
                (
                    "client-certificate-data",
                    a.client_certificate_data.is_some(),
                ),
                ("client-key", a.client_key.is_some()),
                ("client-key-data", a.client_key_data.is_some()),
                ("auth-provider", a.auth_provider.is_some()),
                ("exec", a.exec.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, set)| set.then_some(key))
            .collect();
            (!held.is_empty()).then(|| format!("user `{}` ({})", u.name, held.join(", ")))
        })
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    Err(bad(
        "source.kubeconfig",
        &format!(
            "holds credentials this put does not use: {}; give it a kubeconfig with only the user of its context (pipeline/rbac-readonly.yaml shows how to make one), or set source.allow_unused_credentials: true to pass them on purpose",
            unused.join(", ")
        ),
    ))
}

fn bad(key: &'static str, message: &str) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}
