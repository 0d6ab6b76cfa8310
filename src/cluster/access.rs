//! Asking the API server, before changing anything, whether this identity may do everything the
//! put will do. A Role missing one verb would otherwise show up half-way: after the patch or the
//! push (a forbidden watch), or never (a wait that cannot see the failing pods). Every authenticated
//! identity may create a `SelfSubjectAccessReview`; where even that is refused or the API is
//! unavailable, the put goes on and relies on refusals being fatal when they happen.

use futures::future::join_all;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::{self as cluster, Cluster};
use crate::config::{WorkloadKind, WorkloadRef};
use crate::error::{Error, Result};

/// One permission the put needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    name: Option<String>,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.name {
            Some(name) => write!(f, "/{name}"),
            None => Ok(()),
        }
    }
}

/// What a put does on the cluster, which decides the permissions it needs and the Role that
/// grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The cluster mode: get and patch each workload (the rollback patches too), and with `wait`
    /// watch each workload (list + watch, by name) and the pods.
    Patch { wait: bool },
    /// The GitOps mode: get each workload (what a revert goes back to), watch it and the pods;
    /// nothing is written.
    Watch,
}

impl Mode {
    /// The shipped Role with exactly these permissions.
    fn role(self) -> &'static str {
        match self {
            Mode::Patch { .. } => "pipeline/rbac.yaml",
            Mode::Watch => "pipeline/rbac-readonly.yaml",
        }
    }

    /// What has not happened yet when the review fails.
    fn untouched(self) -> &'static str {
        match self {
            Mode::Patch { .. } => "nothing was changed",
            Mode::Watch => "nothing was pushed",
        }
    }
}

/// The permissions a put of `workloads` in `mode` needs.
fn needs(workloads: &[WorkloadRef], mode: Mode) -> Vec<Need> {
    let (verbs, pods): (&[&'static str], bool) = match mode {
        Mode::Patch { wait: true } => (&["get", "patch", "list", "watch"], true),
        Mode::Patch { wait: false } => (&["get", "patch"], false),
        Mode::Watch => (&["get", "list", "watch"], true),
    };
    let mut needs = Vec::new();
    let mut add = |need: Need| {
        if !needs.contains(&need) {
            needs.push(need);
        }
    };
    for workload in workloads {
        let resource = match workload.kind {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        };
        for verb in verbs {
            add(Need {
                verb,
                group: "apps",
                resource,
                name: Some(workload.name.clone()),
            });
        }
    }
    if pods {
        for verb in ["list", "watch"] {
            add(Need {
                verb,
                group: "",
                resource: "pods",
                name: None,
            });
        }
    }
    needs
}

/// Fails, before anything is patched or pushed, with one line naming every permission this
/// identity lacks for a put of `workloads` in `mode`, and the Role that grants them.
pub async fn review(cluster: &Cluster, workloads: &[WorkloadRef], mode: Mode) -> Result<()> {
    let needs = needs(workloads, mode);
    let answers = join_all(needs.iter().map(|need| allowed(cluster, need))).await;
    let mut missing = Vec::new();
    for (need, answer) in needs.iter().zip(answers) {
        match answer {
            Ok(true) => {}
            Ok(false) => missing.push(need.to_string()),
            Err(kube::Error::Api(status)) if status.code != 401 => {
                eprintln!(
                    "note: cannot review this identity's permissions up front ({}); going on",
                    cluster::describe_status(&status)
                );
                return Ok(());
            }
            Err(e) => {
                return Err(Error::Cluster(format!(
                    "review permissions in namespace {}: {}",
                    cluster.namespace,
                    cluster::describe(&cluster.server, &e)
                )));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let who = identity(cluster)
        .await
        .unwrap_or_else(|| "this identity".into());
    Err(Error::Cluster(format!(
        "{who} may not {} in namespace {}; {}. Grant {} in the Role bound to it (see {})",
        missing.join(", "),
        cluster.namespace,
        mode.untouched(),
        if missing.len() == 1 { "it" } else { "them" },
        mode.role()
    )))
}

async fn allowed(cluster: &Cluster, need: &Need) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(cluster.namespace.clone()),
                verb: Some(need.verb.into()),
                group: Some(need.group.into()),
                resource: Some(need.resource.into()),
                name: need.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(cluster.client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The user name the API server sees (`system:serviceaccount:ml-bot:image-rollout`), for the
/// message; best effort.
async fn identity(cluster: &Cluster) -> Option<String> {
    Api::<SelfSubjectReview>::all(cluster.client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?
        .status?
        .user_info?
        .username
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_put_needs_to_watch_its_workloads_and_the_pods_once() {
        let workloads: Vec<WorkloadRef> = ["deployment/web", "deployment/api", "daemonset/agent"]
            .into_iter()
            .map(|w| WorkloadRef::try_from(w.to_string()).unwrap())
            .collect();
        let all: Vec<String> = needs(&workloads, Mode::Patch { wait: true })
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(all.len(), 3 * 4 + 2);
        assert!(all.contains(&"watch daemonsets.apps/agent".to_string()));
        assert_eq!(all.iter().filter(|n| *n == "watch pods").count(), 1);
        let no_wait: Vec<String> = needs(&workloads[..1], Mode::Patch { wait: false })
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            no_wait,
            ["get deployments.apps/web", "patch deployments.apps/web"]
        );
    }

    #[test]
    fn a_gitops_put_needs_to_read_and_watch_but_never_to_patch() {
        let web = WorkloadRef::try_from("deployment/web".to_string()).unwrap();
        let read_only: Vec<String> = needs(&[web], Mode::Watch)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            read_only,
            [
                "get deployments.apps/web",
                "list deployments.apps/web",
                "watch deployments.apps/web",
                "list pods",
                "watch pods"
            ]
        );
    }
}
