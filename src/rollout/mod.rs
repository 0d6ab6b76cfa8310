//! The cluster mode of `put`: patch the workloads' container image to `repository@digest`, wait
//! until the rollout really finished (`crate::cluster::wait`), and roll back what changed when it
//! did not.
//!
//! Every workload runs its own patch-and-wait concurrently. If any of them fails (or cannot even
//! be patched), every workload this put changed is restored to the pod template it had before,
//! so the cluster is never left half-deployed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodSpec;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::abort::Abort;
use crate::cluster::select::{Selected, select_containers};
use crate::cluster::wait::{self, WaitError, wait_error};
use crate::cluster::workload::Workload;
use crate::cluster::{self, Cluster, access, pods};
use crate::config::{OutParams, OutRequest, Source, Version, WorkloadKind, WorkloadRef};
use crate::deploy::{change_cause, deployable, workloads};
use crate::error::{Error, Result, comma};
use crate::protocol::{Metadata, StepOutput};
use crate::registry::ImageName;

/// The field manager recorded in `managedFields` for the image fields `out` sets.
pub const FIELD_MANAGER: &str = "image-rollout-resource";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The least time a rollback gets: the old pods usually still run, but a put that timed out
/// after a few seconds must not declare its own rollback failed after the same few seconds.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a put in cluster mode. `dir` is the build's working directory (`argv[1]`).
pub async fn put(request: OutRequest, dir: &Path) -> Result<StepOutput> {
    let started = Instant::now();
    let abort = Abort::on_signals()?;
    let OutRequest { source, params } = request;
    if params.restore_timeout.is_some() {
        return Err(Error::Config {
            key: "params.restore_timeout",
            message: "only applies with source.git (GitOps mode); a cluster-mode rollback is awaited for the longer of timeout and 2m".into(),
        });
    }
    let wait = params.wait.unwrap_or(true);
    // Nothing has changed yet: an abort simply ends the step.
    let (workloads, version, cluster) = tokio::select! {
        prepared = prepare(&source, &params, dir, wait) => prepared?,
        cause = abort.requested() => {
            return Err(Error::Aborted(format!("{cause} before anything was changed")));
        }
    };
    let image = format!("{}@{}", source.repository, version.digest);
    let run = Run {
        cluster: &cluster,
        repository: ImageName::parse(&source.repository)?,
        container: params.container.as_deref().or(source.container.as_deref()),
        image: &image,
        wait,
        timeout: params.timeout.unwrap_or(DEFAULT_TIMEOUT),
        dry_run: params.dry_run,
        change_cause: change_cause(&image, version.tag.as_deref()),
        abort,
    };
    eprintln!(
        "rolling {} in namespace {} to {image}{}",
        comma(&workloads),
        cluster.namespace,
        if run.dry_run { " (dry run)" } else { "" }
    );

    // The first failure ends the other waits: the whole put is rolled back anyway.
    let (waiting, stopper) = run.abort.or_failure();
    let (run_ref, waiting, stopper) = (&run, &waiting, &stopper);
    let results = join_all(workloads.iter().map(|w| async move {
        let result = run_ref.roll(w, waiting).await;
        if result.1.is_err() {
            stopper.stop(format!("{w} failed"));
        }
        result
    }))
    .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    if !failures.is_empty() {
        let changed: Vec<&Changed> = results.iter().filter_map(|(c, _)| c.as_ref()).collect();
        return Err(run
            .fail(
                failures,
                &changed,
                params.rollback_on_failure.unwrap_or(true),
            )
            .await);
    }

    let reports: Vec<Report> = results.into_iter().filter_map(|(_, r)| r.ok()).collect();
    let mut metadata = vec![
        Metadata::new("namespace", &cluster.namespace),
        Metadata::new("workloads", comma(&workloads)),
        Metadata::new("previous_image", comma(reports.iter().map(|r| &r.previous))),
        Metadata::new("image", &image),
        Metadata::new("revision", comma(reports.iter().map(|r| &r.revision))),
        Metadata::new("duration", format!("{}s", started.elapsed().as_secs())),
        Metadata::new("rolled_back", "false"),
    ];
    if run.dry_run {
        metadata.push(Metadata::new("dry_run", "true"));
    }
    Ok(StepOutput { version, metadata })
}

/// Everything before the first change: the workloads, the digest, the cluster, and whether this
/// identity may do what the put will do.
async fn prepare(
    source: &Source,
    params: &OutParams,
    dir: &Path,
    wait: bool,
) -> Result<(Vec<WorkloadRef>, Version, Cluster)> {
    let workloads = workloads(source, params)?;
    // The cluster's configuration first: a bad kubeconfig or CA fails before any network call.
    let cluster = cluster::connect(source, params).await?;
    if wait {
        let timeout = params.timeout.unwrap_or(DEFAULT_TIMEOUT);
        cluster::note_if_short_lived(timeout, "params.timeout");
    }
    let version = deployable(source, params, dir).await?;
    access::review(&cluster, &workloads, access::Mode::Patch { wait }).await?;
    Ok((workloads, version, cluster))
}

/// What one put needs to know, shared by all its workloads.
struct Run<'a> {
    cluster: &'a Cluster,
    repository: ImageName,
    container: Option<&'a str>,
    image: &'a str,
    wait: bool,
    timeout: Duration,
    dry_run: bool,
    change_cause: String,
    abort: Abort,
}

/// A workload this put patched, with what it takes to undo it.
struct Changed {
    workload: WorkloadRef,
    /// Container name → image before this put.
    images: BTreeMap<String, String>,
    change_cause: Option<String>,
}

/// A workload that rolled out.
struct Report {
    previous: String,
    revision: String,
}

impl Run<'_> {
    /// Rolls one workload; its wait ends early on `abort`.
    async fn roll(
        &self,
        workload: &WorkloadRef,
        abort: &Abort,
    ) -> (Option<Changed>, Result<Report>) {
        match workload.kind {
            WorkloadKind::Deployment => self.roll_kind::<Deployment>(workload, abort).await,
            WorkloadKind::StatefulSet => self.roll_kind::<StatefulSet>(workload, abort).await,
            WorkloadKind::DaemonSet => self.roll_kind::<DaemonSet>(workload, abort).await,
        }
    }

    /// Patch one workload and wait for it. Returns what changed even when the wait failed, so the
    /// caller can roll it back.
    async fn roll_kind<K: Workload>(
        &self,
        workload: &WorkloadRef,
        abort: &Abort,
    ) -> (Option<Changed>, Result<Report>) {
        let api = Api::<K>::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let object = match api.get(&workload.name).await {
            Ok(object) => object,
            Err(e) => return (None, Err(self.api_error(workload, "get", &e))),
        };
        let Some(template) = object.template() else {
            return (None, Err(Error::NoPodTemplate(workload.to_string())));
        };
        let containers =
            match select_containers(template, self.container, &self.repository, workload) {
                Ok(c) => c,
                Err(e) => return (None, Err(e)),
            };
        let previous: BTreeMap<String, String> = containers
            .iter()
            .map(|c| (c.name.clone(), c.image.clone()))
            .collect();
        let images: BTreeMap<String, String> = containers
            .iter()
            .map(|c| (c.name.clone(), self.image.to_string()))
            .collect();
        let previous_text = summary(workload, &previous);

        if previous == images {
            eprintln!(
                "{workload}: already runs {}; checking that it is healthy",
                self.image
            );
            let result = self
                .wait_for::<K>(&object, &images, workload, self.timeout, abort)
                .await
                .map_err(|e| wait_error(workload, e));
            return (
                None,
                result.map(|revision| Report {
                    previous: previous_text,
                    revision,
                }),
            );
        }

        if let Some(signal) = self.abort.received() {
            return (
                None,
                Err(Error::Aborted(format!(
                    "aborted by {signal} before {workload} was changed"
                ))),
            );
        }
        let patch = image_patch(&containers, self.image, &self.change_cause);
        let patch_params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            dry_run: self.dry_run,
            ..Default::default()
        };
        if let Err(e) = api
            .patch(&workload.name, &patch_params, &Patch::Strategic(patch))
            .await
        {
            return (None, Err(self.api_error(workload, "patch", &e)));
        }
        for c in &containers {
            eprintln!(
                "{workload}: container {}: {} -> {}{}",
                c.name,
                c.image,
                self.image,
                if self.dry_run {
                    " (dry run: accepted by the API server, nothing changed)"
                } else {
                    ""
                }
            );
        }
        if self.dry_run {
            return (
                None,
                Ok(Report {
                    previous: previous_text,
                    revision: String::new(),
                }),
            );
        }

        let changed = Changed {
            workload: workload.clone(),
            change_cause: object
                .meta()
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHANGE_CAUSE))
                .cloned(),
            images: previous,
        };
        let result = self
            .wait_for::<K>(&object, &images, workload, self.timeout, abort)
            .await
            .map_err(|e| wait_error(workload, e));
        (
            Some(changed),
            result.map(|revision| Report {
                previous: previous_text,
                revision,
            }),
        )
    }

    /// Waits for the rollout of the template running `images`, unless `wait: false`.
    async fn wait_for<K: Workload>(
        &self,
        object: &K,
        images: &BTreeMap<String, String>,
        workload: &WorkloadRef,
        timeout: Duration,
        abort: &Abort,
    ) -> Result<String, WaitError> {
        if !self.wait {
            return Ok(String::new());
        }
        let selector = wait::selector(object);
        let label = workload.to_string();
        let target = wait::Target {
            client: self.cluster.client.clone(),
            namespace: &self.cluster.namespace,
            name: &workload.name,
            selector: &selector,
            label: &label,
            applying: None,
        };
        let done = wait::rollout::<K>(target, images, timeout, abort).await?;
        eprintln!("{workload}: rollout complete");
        Ok(done.revision())
    }

    /// Builds the final error, after rolling back everything that changed (when enabled).
    async fn fail(&self, failures: Vec<String>, changed: &[&Changed], rollback: bool) -> Error {
        let mut message = failures.join("; ");
        if changed.is_empty() {
            return Error::DeployFailed(message);
        }
        if !rollback {
            message.push_str(&format!(
                "; left as is (rollback_on_failure: false): {}",
                comma(changed.iter().map(|c| &c.workload))
            ));
            return Error::DeployFailed(message);
        }
        eprintln!(
            "rolling back {}",
            comma(changed.iter().map(|c| &c.workload))
        );
        let outcomes = join_all(changed.iter().map(|c| self.rollback(c))).await;
        Error::DeployFailed(format!("{message}; {}", outcomes.join("; ")))
    }

    /// Undoes one workload's patch, awaits that, and says how it went in one clause.
    async fn rollback(&self, changed: &Changed) -> String {
        match changed.workload.kind {
            WorkloadKind::Deployment => self.rollback_kind::<Deployment>(changed).await,
            WorkloadKind::StatefulSet => self.rollback_kind::<StatefulSet>(changed).await,
            WorkloadKind::DaemonSet => self.rollback_kind::<DaemonSet>(changed).await,
        }
    }

    /// Puts back the images (and change-cause) the workload had before this put — exactly what
    /// its patch changed, so the controller returns to the previous revision as `kubectl rollout
    /// undo` would — but only while they are still the ones this put set. The JSON patch tests
    /// each container's name and image (and the change-cause) before replacing them, so a change
    /// someone else made in the meantime (another pipeline, `kubectl set image`, Argo) is never
    /// thrown away; their other changes to the template are kept either way.
    async fn rollback_kind<K: Workload>(&self, changed: &Changed) -> String {
        let workload = &changed.workload;
        let previous = summary(workload, &changed.images);
        let ours: BTreeMap<String, String> = changed
            .images
            .keys()
            .map(|name| (name.clone(), self.image.to_string()))
            .collect();
        let api = Api::<K>::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        // A concurrent writer can make the tests fail between our read and our patch; read
        // again and decide afresh, a few times.
        let mut restored = None;
        for _ in 0..3 {
            let object = match api.get(&workload.name).await {
                Ok(object) => object,
                Err(e) => {
                    return format!(
                        "ROLLBACK FAILED for {workload}: {}",
                        self.api_error(workload, "get", &e)
                    );
                }
            };
            let spec = object
                .template()
                .and_then(|t| t.spec.clone())
                .unwrap_or_default();
            if !pods::spec_runs(&spec, &ours) {
                return format!(
                    "left {workload} as is: someone else changed its image after this put's patch (now {}), so rolling back would undo their change",
                    pods::images_of(&spec, &ours)
                );
            }
            let cause = object
                .meta()
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHANGE_CAUSE));
            let patch = restore_patch(
                &spec,
                changed,
                self.image,
                (cause == Some(&self.change_cause)).then_some(self.change_cause.as_str()),
            );
            match api
                .patch(&workload.name, &params, &Patch::<()>::Json(patch))
                .await
            {
                Ok(object) => {
                    restored = Some(object);
                    break;
                }
                // A failed `test`: the object changed since the read.
                Err(kube::Error::Api(status)) if status.code == 422 => continue,
                Err(e) => {
                    return format!(
                        "ROLLBACK FAILED for {workload}: {}",
                        self.api_error(workload, "patch", &e)
                    );
                }
            }
        }
        let Some(object) = restored else {
            return format!(
                "ROLLBACK FAILED for {workload}: it kept changing under the rollback's patch; check it with kubectl rollout history"
            );
        };
        eprintln!("{workload}: restored {previous}");
        let timeout = self.timeout.max(ROLLBACK_TIMEOUT);
        match self
            // The rollback's wait ends on signals only: it is why the put failed.
            .wait_for::<K>(&object, &changed.images, workload, timeout, &self.abort)
            .await
        {
            Ok(_) => format!("rolled back {workload} to {previous}"),
            Err(WaitError::Aborted { cause, .. }) => {
                format!("restored {previous} (its rollout not awaited: {cause})")
            }
            Err(WaitError::Refused(reason)) => {
                format!("restored {previous}, but could not verify its rollout: {reason}")
            }
            Err(WaitError::Replaced(now)) => {
                format!("restored {previous}, then someone else changed {workload} (now {now})")
            }
            // Only a GitOps wait (one with `applying`) ends this way.
            Err(e @ WaitError::NotApplied { .. }) => format!("ROLLBACK FAILED for {workload}: {e}"),
            Err(WaitError::Failed(reason)) => format!(
                "ROLLBACK FAILED for {workload}: restored {previous}, but that did not roll out either: {reason}"
            ),
        }
    }

    fn api_error(&self, workload: &WorkloadRef, verb: &str, e: &kube::Error) -> Error {
        self.cluster.api_error(workload, verb, e)
    }
}

/// The JSON patch that undoes this put's patch of `changed`: for every container it changed,
/// test that it is still at that index with this put's `image`, then put the previous image
/// back. `cause` (this put's change-cause, if the workload still carries it) is tested and
/// restored too; someone else's change-cause is left alone.
fn restore_patch(
    spec: &PodSpec,
    changed: &Changed,
    image: &str,
    cause: Option<&str>,
) -> json_patch::Patch {
    let mut ops = Vec::new();
    for (name, previous) in &changed.images {
        let found = [
            (
                "initContainers",
                spec.init_containers.as_deref().unwrap_or_default(),
            ),
            ("containers", &spec.containers[..]),
        ]
        .into_iter()
        .find_map(|(list, containers)| {
            containers
                .iter()
                .position(|c| &c.name == name)
                .map(|i| format!("/spec/template/spec/{list}/{i}"))
        });
        // spec_runs() held, so every container is there.
        let Some(path) = found else { continue };
        ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": name}));
        ops.push(json!({"op": "test", "path": format!("{path}/image"), "value": image}));
        ops.push(json!({"op": "replace", "path": format!("{path}/image"), "value": previous}));
    }
    if let Some(ours) = cause {
        let annotation = "/metadata/annotations/kubernetes.io~1change-cause";
        ops.push(json!({"op": "test", "path": annotation, "value": ours}));
        ops.push(match &changed.change_cause {
            Some(previous) => json!({"op": "replace", "path": annotation, "value": previous}),
            None => json!({"op": "remove", "path": annotation}),
        });
    }
    serde_json::from_value(Value::Array(ops)).expect("a well-formed JSON patch")
}

/// A strategic merge patch that sets only the image of the selected containers (merged by name)
/// and records the change-cause.
fn image_patch(containers: &[Selected], image: &str, change_cause: &str) -> Value {
    let entries = |init: bool| -> Vec<Value> {
        containers
            .iter()
            .filter(|c| c.init == init)
            .map(|c| json!({"name": c.name, "image": image}))
            .collect()
    };
    let mut spec = serde_json::Map::new();
    for (key, init) in [("containers", false), ("initContainers", true)] {
        let list = entries(init);
        if !list.is_empty() {
            spec.insert(key.into(), Value::Array(list));
        }
    }
    json!({
        "metadata": {"annotations": {CHANGE_CAUSE: change_cause}},
        "spec": {"template": {"spec": spec}},
    })
}

fn summary(workload: &WorkloadRef, images: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = images.iter().map(|(c, i)| format!("{c}={i}")).collect();
    format!("{workload} {}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_touches_only_the_selected_images() {
        let selected = vec![
            Selected {
                name: "migrate".into(),
                image: "r:old".into(),
                init: true,
            },
            Selected {
                name: "app".into(),
                image: "r:old".into(),
                init: false,
            },
        ];
        assert_eq!(
            image_patch(&selected, "r@sha256:1", "why"),
            json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "why"}},
                "spec": {"template": {"spec": {
                    "containers": [{"name": "app", "image": "r@sha256:1"}],
                    "initContainers": [{"name": "migrate", "image": "r@sha256:1"}],
                }}},
            })
        );
    }
}
