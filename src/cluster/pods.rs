//! Pod-level reasons a rollout will not finish, so `out` can fail in seconds with the reason a
//! person would otherwise dig out of `kubectl describe pod` after the timeout.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodSpec};

/// Waiting reasons that do not clear up by waiting. (`ContainerCreating` and `PodInitializing`
/// are normal; these are not.)
const FAILING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// One pod stuck for a reason worth failing on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    /// Empty for pod-level problems (unschedulable).
    pub container: String,
    pub reason: String,
    pub message: String,
}

impl PodProblem {
    /// Identity across events: the same pod stuck for the same reason.
    pub fn key(&self) -> (String, String, String) {
        (
            self.pod.clone(),
            self.container.clone(),
            self.reason.clone(),
        )
    }
}

impl fmt::Display for PodProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if !self.container.is_empty() {
            write!(f, " container {}", self.container)?;
        }
        write!(f, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Whether `pod` runs the new template: every container in `images` (name → image) has that image.
pub fn runs(pod: &Pod, images: &BTreeMap<String, String>) -> bool {
    pod.spec
        .as_ref()
        .is_some_and(|spec| spec_runs(spec, images))
}

/// Whether a pod spec (a pod's, or a workload's template) gives every container in `images`
/// (name → image) that image.
pub fn spec_runs(spec: &PodSpec, images: &BTreeMap<String, String>) -> bool {
    images
        .iter()
        .all(|(name, image)| image_of(spec, name) == Some(image.as_str()))
}

/// `name=image …` for the containers named in `images`, as `spec` has them now.
pub fn images_of(spec: &PodSpec, images: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = images
        .keys()
        .map(|name| {
            format!(
                "{name}={}",
                image_of(spec, name).unwrap_or("(no such container)")
            )
        })
        .collect();
    parts.join(" ")
}

fn image_of<'a>(spec: &'a PodSpec, name: &str) -> Option<&'a str> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .and_then(|c| c.image.as_deref())
}

/// Problems of the live pods that run `images`.
pub fn problems<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    images: &BTreeMap<String, String>,
) -> Vec<PodProblem> {
    let mut out = Vec::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() || !runs(pod, images) {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = &pod.status else { continue };
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        if let Some(c) = unschedulable {
            out.push(PodProblem {
                pod: name.clone(),
                container: String::new(),
                reason: "Unschedulable".into(),
                message: c.message.clone().unwrap_or_default(),
            });
        }
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        out.extend(statuses.filter_map(|s| container_problem(&name, s)));
    }
    out
}

fn container_problem(pod: &str, status: &ContainerStatus) -> Option<PodProblem> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref().filter(|r| FAILING.contains(r))?;
    // For a crash the waiting message is only "back-off restarting failed container"; what the
    // user needs is why it died last time.
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let message = match (reason, last) {
        ("CrashLoopBackOff", Some(t)) => {
            let mut m = format!("exit code {}", t.exit_code);
            if let Some(r) = &t.reason {
                m = format!("{m} ({r})");
            }
            if let Some(msg) = t
                .message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
            {
                m = format!("{m}: {msg}");
            }
            let n = status.restart_count;
            format!("{m}; restarted {n} time{}", if n == 1 { "" } else { "s" })
        }
        _ => waiting.message.clone().unwrap_or_default(),
    };
    Some(PodProblem {
        pod: pod.into(),
        container: status.name.clone(),
        reason: reason.into(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "image": image}, {"name": "proxy", "image": "envoy:1"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn images(image: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_string(), image.to_string())])
    }

    #[test]
    fn crash_loop_reports_the_last_termination_message() {
        let p = pod(
            "repo@sha256:new",
            json!({"containerStatuses": [{
                "name": "app", "image": "repo@sha256:new", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "panic: config missing\n"}}
            }]}),
        );
        let problems = problems([&p], &images("repo@sha256:new"));
        assert_eq!(
            problems[0].to_string(),
            "pod web-1 container app: CrashLoopBackOff: exit code 1 (Error): panic: config missing; restarted 3 times"
        );
    }

    #[test]
    fn old_pods_and_normal_waiting_are_not_problems() {
        let pulling = json!({"containerStatuses": [{
            "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}
        }]});
        // The same failure on a pod of the old template is not ours to judge.
        assert!(
            problems(
                [&pod("repo@sha256:old", pulling.clone())],
                &images("repo@sha256:new")
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                [&pod("repo@sha256:new", pulling)],
                &images("repo@sha256:new")
            )
            .len(),
            1
        );
        let creating = json!({"containerStatuses": [{
            "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}
        }]});
        assert!(
            problems(
                [&pod("repo@sha256:new", creating)],
                &images("repo@sha256:new")
            )
            .is_empty()
        );
    }

    #[test]
    fn unschedulable_is_a_pod_level_problem() {
        let p = pod(
            "repo@sha256:new",
            json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}]}),
        );
        assert_eq!(
            problems([&p], &images("repo@sha256:new"))[0].to_string(),
            "pod web-1: Unschedulable: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        );
    }
}
