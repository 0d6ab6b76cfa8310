//! The three kinds `out` can roll, behind one trait, and kubectl's rules for "is the rollout done".
//!
//! The rules follow `kubectl rollout status` (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
//! rollout_status.go). They matter more than they look: right after a patch, a Deployment still
//! reports every replica ready and `NewReplicaSetAvailable` from the *previous* rollout, so any
//! rule that does not first wait for `observedGeneration` to catch up declares victory before the
//! controller has even seen the change.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use serde::de::DeserializeOwned;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Complete,
    /// Still going; the text is the progress line (`2/3 updated, 1/3 available`).
    Waiting(String),
    /// Will not finish on its own.
    Failed(String),
}

/// A workload kind: where its pod template and selector are, and when its rollout is done.
pub trait Workload:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + serde::Serialize
    + Send
    + Sync
    + 'static
{
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn selector(&self) -> Option<&LabelSelector>;
    fn rollout(&self) -> Rollout;
    /// What `metadata.revision` reports once done.
    fn revision(&self) -> String;
}

/// `template()` and `selector()`: all three kinds keep them at `spec.template` and `spec.selector`
/// (in different spec types, hence a macro rather than a default method).
macro_rules! spec_accessors {
    () => {
        fn template(&self) -> Option<&PodTemplateSpec> {
            self.spec.as_ref().map(|s| &s.template)
        }

        fn selector(&self) -> Option<&LabelSelector> {
            self.spec.as_ref().map(|s| &s.selector)
        }
    };
}

/// StatefulSets and DaemonSets with `updateStrategy: OnDelete` change pods only when deleted.
fn on_delete(strategy: Option<&str>) -> Option<Rollout> {
    strategy.filter(|t| *t != "RollingUpdate").map(|_| {
        Rollout::Failed(
            "uses updateStrategy OnDelete: pods change only when deleted, so there is no rollout to wait for (set wait: false)".into(),
        )
    })
}

fn generation_observed(generation: Option<i64>, observed: Option<i64>) -> bool {
    generation.unwrap_or(0) <= observed.unwrap_or(0)
}

fn waiting_for_controller(generation: Option<i64>) -> Rollout {
    Rollout::Waiting(format!(
        "waiting for the controller to observe generation {}",
        generation.unwrap_or(0)
    ))
}

impl Workload for Deployment {
    spec_accessors!();

    fn rollout(&self) -> Rollout {
        let status = self.status.clone().unwrap_or_default();
        if !generation_observed(self.metadata.generation, status.observed_generation) {
            return waiting_for_controller(self.metadata.generation);
        }
        let deadline_exceeded = status.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        if deadline_exceeded {
            let seconds = self
                .spec
                .as_ref()
                .and_then(|s| s.progress_deadline_seconds)
                .unwrap_or(600);
            return Rollout::Failed(format!("exceeded its progress deadline ({seconds}s)"));
        }
        let want = self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let updated = status.updated_replicas.unwrap_or(0);
        let replicas = status.replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        // During a surge old and new pods are both available (4 of 3); the line reports
        // capacity, so it is capped at the desired count.
        let line = format!(
            "{updated}/{want} updated, {}/{want} available",
            available.min(want)
        );
        if updated < want || available < updated {
            Rollout::Waiting(line)
        } else if replicas > updated {
            Rollout::Waiting(format!("{line}, {} old terminating", replicas - updated))
        } else {
            Rollout::Complete
        }
    }

    fn revision(&self) -> String {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .cloned()
            .unwrap_or_default()
    }
}

impl Workload for StatefulSet {
    spec_accessors!();

    fn rollout(&self) -> Rollout {
        let spec = self.spec.clone().unwrap_or_default();
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        if let Some(unwaitable) = on_delete(strategy.type_.as_deref()) {
            return unwaitable;
        }
        let status = self.status.clone().unwrap_or_default();
        if status.observed_generation.unwrap_or(0) == 0
            || !generation_observed(self.metadata.generation, status.observed_generation)
        {
            return waiting_for_controller(self.metadata.generation);
        }
        let want = spec.replicas.unwrap_or(1);
        let ready = status.ready_replicas.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        let line = format!("{updated}/{want} updated, {ready}/{want} ready");
        if ready < want {
            return Rollout::Waiting(line);
        }
        let partition = strategy
            .rolling_update
            .and_then(|r| r.partition)
            .unwrap_or(0);
        if partition > 0 {
            return if updated < want - partition {
                Rollout::Waiting(format!("{line}, partition {partition}"))
            } else {
                Rollout::Complete
            };
        }
        if status.update_revision != Some(status.current_revision.clone().unwrap_or_default()) {
            return Rollout::Waiting(line);
        }
        Rollout::Complete
    }

    fn revision(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.update_revision.clone())
            .unwrap_or_default()
    }
}

impl Workload for DaemonSet {
    spec_accessors!();

    fn rollout(&self) -> Rollout {
        let strategy = self.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
        if let Some(unwaitable) = on_delete(strategy.and_then(|s| s.type_.as_deref())) {
            return unwaitable;
        }
        let status = self.status.clone().unwrap_or_default();
        if !generation_observed(self.metadata.generation, status.observed_generation) {
            return waiting_for_controller(self.metadata.generation);
        }
        let want = status.desired_number_scheduled;
        let updated = status.updated_number_scheduled.unwrap_or(0);
        let available = status.number_available.unwrap_or(0);
        if updated < want || available < want {
            Rollout::Waiting(format!(
                "{updated}/{want} updated, {available}/{want} available"
            ))
        } else {
            Rollout::Complete
        }
    }

    fn revision(&self) -> String {
        format!("generation {}", self.metadata.generation.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, replicas: i32, status: DeploymentStatus) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(generation);
        d.spec = Some(DeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        });
        d.status = Some(status);
        d
    }

    /// Right after a patch the status still describes the previous, complete rollout. Only
    /// observedGeneration tells the two apart.
    #[test]
    fn deployment_waits_for_observed_generation_even_when_the_old_rollout_looks_done() {
        let d = deployment(
            2,
            3,
            DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(3),
                updated_replicas: Some(3),
                available_replicas: Some(3),
                ready_replicas: Some(3),
                ..Default::default()
            },
        );
        assert_eq!(
            d.rollout(),
            Rollout::Waiting("waiting for the controller to observe generation 2".into())
        );
    }

    #[test]
    fn deployment_counts_updated_available_and_old_terminating() {
        let at = |replicas, updated, available| {
            deployment(
                2,
                3,
                DeploymentStatus {
                    observed_generation: Some(2),
                    replicas: Some(replicas),
                    updated_replicas: Some(updated),
                    available_replicas: Some(available),
                    ..Default::default()
                },
            )
            .rollout()
        };
        assert_eq!(
            at(4, 2, 1),
            Rollout::Waiting("2/3 updated, 1/3 available".into())
        );
        assert_eq!(
            at(3, 3, 2),
            Rollout::Waiting("3/3 updated, 2/3 available".into())
        );
        assert_eq!(
            at(4, 3, 3),
            Rollout::Waiting("3/3 updated, 3/3 available, 1 old terminating".into())
        );
        assert_eq!(
            at(4, 3, 4),
            Rollout::Waiting("3/3 updated, 3/3 available, 1 old terminating".into())
        );
        assert_eq!(at(3, 3, 3), Rollout::Complete);
    }

    #[test]
    fn deployment_fails_on_progress_deadline() {
        let d = deployment(
            2,
            1,
            DeploymentStatus {
                observed_generation: Some(2),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Progressing".into(),
                    status: "False".into(),
                    reason: Some("ProgressDeadlineExceeded".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        );
        assert!(matches!(d.rollout(), Rollout::Failed(m) if m.contains("progress deadline")));
    }
}
