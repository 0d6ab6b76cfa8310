//! The Kubernetes side of `put`, shared by both modes: the client ([`connect`]), asking what this
//! identity may do ([`access`]), reading a workload ([`Cluster::observe`]), and waiting for its
//! rollout ([`wait`]: kubectl's completion rules in [`workload`], the pods' fail-fast reasons in
//! [`pods`]; what a 401 says about the token in `token.rs`). The cluster mode (`crate::rollout`)
//! patches and rolls back on top of this; the GitOps mode (`crate::gitops`) only reads.

pub mod access;
mod client;
mod connect;
pub mod pods;
pub mod select;
mod token;
pub mod wait;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Api;

use crate::config::{WorkloadKind, WorkloadRef};
use crate::error::{Error, Result};
use crate::registry::ImageName;
pub use client::{Cluster, PERMISSION_FIX, describe, describe_status};
pub use connect::connect;
use select::select_containers;
pub use token::note_if_short_lived;
use workload::Workload;

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
            .ok_or_else(|| Error::NoPodTemplate(workload.to_string()))?;
        let selected = select_containers(template, container, repository, workload)?;
        Ok(Observed {
            selector: wait::selector(&object),
            images: selected.into_iter().map(|c| (c.name, c.image)).collect(),
        })
    }
}
