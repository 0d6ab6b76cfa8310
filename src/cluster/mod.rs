//! The Kubernetes side of `put`, shared by both modes: the client ([`connect`]), asking what this
//! identity may do ([`access`]), reading a workload ([`Cluster::observe`]), and waiting for its
//! rollout ([`wait`]: kubectl's completion rules in [`workload`], the pods' fail-fast reasons in
//! [`pods`]). The cluster mode (`crate::rollout`) patches and rolls back on top of this; the GitOps
//! mode (`crate::gitops`) only reads.

pub mod access;
mod connect;
pub mod pods;
pub mod wait;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::{Api, Client};

use crate::config::{WorkloadKind, WorkloadRef};
use crate::error::{Error, Result, root_cause};
use crate::put::select::select_containers;
use crate::registry::ImageName;
pub use connect::connect;
use workload::Workload;

/// A client, the namespace to work in, and the server (for messages).
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub server: String,
}

/// A workload as read before a GitOps put: its pod selector and the selected containers' images.
pub struct Observed {
    pub selector: String,
    pub images: BTreeMap<String, String>,
}

impl Cluster {
    /// Reads `workload` (one GET, nothing written) and selects its containers as the cluster
    /// mode does.
    pub async fn observe(
        &self,
        workload: &WorkloadRef,
        container: Option<&str>,
        repository: &ImageName,
    ) -> Result<Observed> {
        match workload.kind {
            WorkloadKind::Deployment => {
                self.observe_kind::<Deployment>(workload, container, repository)
                    .await
            }
            WorkloadKind::StatefulSet => {
                self.observe_kind::<StatefulSet>(workload, container, repository)
                    .await
            }
            WorkloadKind::DaemonSet => {
                self.observe_kind::<DaemonSet>(workload, container, repository)
                    .await
            }
        }
    }

    async fn observe_kind<K: Workload>(
        &self,
        workload: &WorkloadRef,
        container: Option<&str>,
        repository: &ImageName,
    ) -> Result<Observed> {
        let object = Api::<K>::namespaced(self.client.clone(), &self.namespace)
            .get(&workload.name)
            .await
            .map_err(|e| self.api_error(workload, "get", &e))?;
        let template = object
            .template()
            .ok_or_else(|| Error::Rollout(format!("{workload} has no pod template")))?;
        let selected = select_containers(template, container, repository, workload)?;
        Ok(Observed {
            selector: wait::selector(&object),
            images: selected.into_iter().map(|c| (c.name, c.image)).collect(),
        })
    }

    /// One line for a failed API call on `workload`: "not found" names the namespace to check,
    /// anything else the server's own message.
    pub fn api_error(&self, workload: &WorkloadRef, verb: &str, e: &kube::Error) -> Error {
        if let kube::Error::Api(status) = e
            && status.code == 404
        {
            return Error::Cluster(format!(
                "{workload} not found in namespace {}; check source.namespace and the workload name",
                self.namespace
            ));
        }
        Error::Cluster(format!(
            "{verb} {workload} in namespace {}: {}",
            self.namespace,
            describe(&self.server, e)
        ))
    }
}

/// Renders a kube error as one line: the API's own message for API errors (it names the user,
/// verb and resource for RBAC denials), the innermost cause for transport errors.
pub fn describe(server: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => describe_status(status),
        kube::Error::Auth(_) => format!(
            "authentication failed against {server}: {}; check the token or kubeconfig",
            root_cause(e)
        ),
        _ => format!("cannot reach {server}: {}", root_cause(e)),
    }
}

/// An API server's error status as one line, with the fix for refusals.
pub fn describe_status(status: &kube::core::Status) -> String {
    let mut line = format!(
        "{} (HTTP {} {})",
        status.message, status.code, status.reason
    );
    match status.code {
        401 => line.push_str("; check the token or kubeconfig (it may have expired)"),
        403 => line.push_str(PERMISSION_FIX),
        _ => {}
    }
    line
}

/// The fix for every permission refusal.
pub const PERMISSION_FIX: &str = "; grant it in the Role bound to this identity (see pipeline/rbac.yaml, or pipeline/rbac-readonly.yaml in GitOps mode)";
