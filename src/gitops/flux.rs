//! After a revert: Flux's own word that the deploy commit can no longer be applied.
//!
//! Seeing the workloads back on their previous images is not enough. A Flux whose source had
//! fetched the deploy commit before the revert can still apply it afterwards, for as long as its
//! artifact is that commit — seen with a suspended Kustomization: resumed after `out` had exited,
//! it ran the broken digest for a second before the revert arrived. So, where the read-only
//! identity may read Flux's objects (`pipeline/rbac-readonly-flux.yaml`), the put waits until
//! every GitRepository that follows the config repository's branch holds the revert as its
//! artifact, and every Kustomization built from it that is not suspended reports the revert
//! applied. Without that permission, or without Flux, it says so in one line and waits for
//! nothing more.

use std::time::Duration;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio::time::Instant;

use crate::abort::Abort;
use crate::cluster::Cluster;

/// How often Flux's status is read: its controllers update it once per reconciliation.
const POLL: Duration = Duration::from_secs(1);

/// What waiting for Flux came to.
pub enum Reported {
    /// Flux holds (and, unless suspended, applied) the revision; one clause each object.
    Applied(Vec<String>),
    /// Nothing to wait for: no permission, no Flux, or no object following the repository.
    Skipped(String),
}

/// Waits until Flux in `namespace` holds `revision` of `uri`'s `branch` everywhere it follows
/// it, at most `timeout`. `Err` says which object is where when the time is up.
pub async fn await_revision(
    cluster: &Cluster,
    namespace: &str,
    uri: &str,
    branch: &str,
    revision: &str,
    timeout: Duration,
    abort: &Abort,
) -> Result<Reported, String> {
    let api = |group: &str, kind: &str, plural: &str| {
        let gvk = GroupVersionKind::gvk(group, "v1", kind);
        Api::<DynamicObject>::namespaced_with(
            cluster.client.clone(),
            namespace,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        )
    };
    let sources = api(
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    );
    let kustomizations = api(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    );
    let deadline = Instant::now() + timeout;
    loop {
        let (repos, kusts) = match (
            sources.list(&ListParams::default()).await,
            kustomizations.list(&ListParams::default()).await,
        ) {
            (Ok(s), Ok(k)) => (s.items, k.items),
            (Err(kube::Error::Api(e)), _) | (_, Err(kube::Error::Api(e)))
                if matches!(e.code, 403 | 404) =>
            {
                let why = if e.code == 404 {
                    "Flux's resources are not installed".to_string()
                } else {
                    "this identity may not list Flux's GitRepositories and Kustomizations (pipeline/rbac-readonly-flux.yaml grants it)".to_string()
                };
                return Ok(Reported::Skipped(format!(
                    "not waiting for Flux to report the revert in namespace {namespace}: {why}"
                )));
            }
            (Err(e), _) | (_, Err(e)) => {
                // Transient (the API server restarting): ask again until the deadline.
                if Instant::now() >= deadline {
                    return Err(format!("cannot read Flux's status: {e}"));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let followed: Vec<&DynamicObject> =
            repos.iter().filter(|r| follows(r, uri, branch)).collect();
        if followed.is_empty() {
            return Ok(Reported::Skipped(format!(
                "not waiting for Flux: no GitRepository in namespace {namespace} follows {uri} {branch}"
            )));
        }
        let built: Vec<&DynamicObject> = kusts
            .iter()
            .filter(|k| {
                let source = &k.data["spec"]["sourceRef"];
                source["kind"] == "GitRepository"
                    && source["namespace"].as_str().is_none_or(|n| n == namespace)
                    && followed
                        .iter()
                        .any(|r| r.metadata.name.as_deref() == source["name"].as_str())
            })
            .collect();
        let mut done = Vec::new();
        let mut pending = Vec::new();
        for repo in &followed {
            let at = text(&repo.data["status"]["artifact"]["revision"]);
            let clause = format!("gitrepository/{} at {at}", name(repo));
            if at.contains(revision) {
                done.push(clause);
            } else {
                pending.push(clause);
            }
        }
        for k in &built {
            let at = text(&k.data["status"]["lastAppliedRevision"]);
            if k.data["spec"]["suspend"] == Value::Bool(true) {
                done.push(format!(
                    "kustomization/{} is suspended (resumed, it applies its source's artifact)",
                    name(k)
                ));
            } else if at.contains(revision) {
                done.push(format!("kustomization/{} applied {at}", name(k)));
            } else {
                pending.push(format!("kustomization/{} at {at}", name(k)));
            }
        }
        if pending.is_empty() {
            return Ok(Reported::Applied(done));
        }
        if Instant::now() >= deadline {
            return Err(pending.join(", "));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            cause = abort.requested() => return Err(format!("{cause} while waiting for Flux")),
        }
    }
}

/// Whether a GitRepository follows `branch` of `uri` (the same URL up to a trailing `/` or
/// `.git`; a GitRepository without a branch follows its default, which may be it).
fn follows(repo: &DynamicObject, uri: &str, branch: &str) -> bool {
    let same = |url: &str| {
        let bare = |u: &str| {
            let u = u.trim_end_matches('/');
            u.strip_suffix(".git").unwrap_or(u).to_ascii_lowercase()
        };
        bare(url) == bare(uri)
    };
    let spec = &repo.data["spec"];
    spec["url"].as_str().is_some_and(same)
        && spec["ref"]["branch"].as_str().is_none_or(|b| b == branch)
}

fn name(object: &DynamicObject) -> &str {
    object.metadata.name.as_deref().unwrap_or("?")
}

/// A status string, or `none` before the controller wrote one.
fn text(value: &Value) -> String {
    value.as_str().unwrap_or("none").to_string()
}
