//! Waiting for a rollout by watching, not polling: the workload and its pods are mirrored by
//! kube-runtime reflectors, and every event re-evaluates kubectl's completion rule and the pods'
//! health. The watchers re-list after `410 Gone` and reconnect with backoff when the API server
//! goes away, so the wait survives watch expiry and API server restarts. A refusal (401, 403) is
//! not such a fault: it ends the wait at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::core::Selector;

use super::client::{Cluster, describe_status};
use super::pods::{self, PodProblem};
use super::workload::{Rollout, Workload};
use crate::abort::{Abort, Cause};
use crate::config::{WorkloadKind, WorkloadRef};
use crate::error::Error;

/// How long a new pod may sit in a failing state (image pull error, crash loop, unschedulable)
/// before the rollout is declared failed. Long enough to ride out one transient registry error
/// and the first kubelet retry, short enough to beat a 10-minute progress deadline by far.
pub const FAILURE_GRACE: Duration = Duration::from_secs(15);

/// Why a wait ended without the rollout completing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// The rollout will not finish: a pod's reason, the progress deadline, the timeout.
    Failed(String),
    /// The workload's template no longer runs the images waited for: someone else changed it.
    /// The text names what it runs now.
    Replaced(String),
    /// The API server refused to show the workload or its pods (401/403): nothing to wait
    /// out. The text is the API server's message with the fix.
    Refused(String),
    /// SIGTERM or SIGINT arrived, or another part of the step failed; `state` is the last
    /// progress line.
    Aborted { cause: Cause, state: String },
    /// GitOps mode: the timeout passed and the template never ran the images waited for; it
    /// still runs `still`. The agent did not apply the commit: nothing new ever ran.
    NotApplied { timeout: Duration, still: String },
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Failed(reason) => f.write_str(reason),
            WaitError::Replaced(now) => write!(
                f,
                "changed by someone else while waiting: the template now runs {now}"
            ),
            WaitError::Refused(reason) => write!(f, "cannot follow the rollout: {reason}"),
            WaitError::Aborted { cause, state } => write!(f, "{cause} while waiting ({state})"),
            WaitError::NotApplied { timeout, still } => write!(
                f,
                "not applied by the agent within {}: the pod template still runs {still}",
                humantime::format_duration(*timeout)
            ),
        }
    }
}

/// A wait that ended without the rollout, as the put's error for `workload`.
pub fn wait_error(workload: &WorkloadRef, e: WaitError) -> Error {
    Error::NotRolledOut(match e {
        WaitError::Failed(reason) => format!("{workload} did not roll out: {reason}"),
        other => format!("{workload}: {other}"),
    })
}

/// The workload a wait follows.
pub struct Target<'a> {
    pub client: kube::Client,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The workload's pod selector, as a label selector string.
    pub selector: &'a str,
    /// Prefixes progress lines (`deployment/web`).
    pub label: &'a str,
    /// GitOps mode: the images the template may still run while someone else (the agent) is
    /// about to apply the change; `None` when this put changed the template itself.
    pub applying: Option<&'a BTreeMap<String, String>>,
}

/// [`rollout`] for a workload named by kind: returns its revision once complete.
pub async fn workload(
    cluster: &Cluster,
    workload: &WorkloadRef,
    selector: &str,
    images: &BTreeMap<String, String>,
    applying: Option<&BTreeMap<String, String>>,
    timeout: Duration,
    abort: &Abort,
) -> Result<String, WaitError> {
    let label = workload.to_string();
    let target = Target {
        client: cluster.client.clone(),
        namespace: &cluster.namespace,
        name: &workload.name,
        selector,
        label: &label,
        applying,
    };
    let revision = match workload.kind {
        WorkloadKind::Deployment => rollout::<Deployment>(target, images, timeout, abort)
            .await?
            .revision(),
        WorkloadKind::StatefulSet => rollout::<StatefulSet>(target, images, timeout, abort)
            .await?
            .revision(),
        WorkloadKind::DaemonSet => rollout::<DaemonSet>(target, images, timeout, abort)
            .await?
            .revision(),
    };
    eprintln!("{workload}: rollout complete");
    Ok(revision)
}

/// The workload's pod selector as a label-selector string (empty when it has none).
pub fn selector<K: Workload>(object: &K) -> String {
    object
        .selector()
        .cloned()
        .and_then(|s| Selector::try_from(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Waits until the workload's rollout is complete, or fails with a one-line reason.
///
/// `images` (container name → image) identifies the pods of the template being rolled out; the
/// rollout counts only while the workload's template still runs them.
/// How long the API server keeps one watch open before the wait reopens it (kube's default is
/// 290 s). A watch is authenticated when it opens, so this is how soon a short-lived token (a
/// Concourse ID token) that expires mid-wait is noticed: within a minute, while a rollback can be
/// named as impossible, rather than after the rollout failed. One request a minute per watch.
const WATCH_SECONDS: u32 = 60;

pub async fn rollout<K: Workload>(
    target: Target<'_>,
    images: &BTreeMap<String, String>,
    timeout: Duration,
    abort: &Abort,
) -> Result<K, WaitError> {
    let Target {
        client,
        namespace,
        name,
        selector,
        label,
        applying,
    } = target;
    let started = Instant::now();
    let deadline = started + timeout;
    let key = ObjectRef::<K>::new(name).within(namespace);
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let pods_api = Api::<Pod>::namespaced(client, namespace);

    let (workloads, workload_writer) = reflector::store::<K>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let workload_events = watcher(
        api,
        watcher::Config::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(WATCH_SECONDS),
    )
    .default_backoff()
    .reflect(workload_writer)
    .map(|e| e.err());
    let pod_events = watcher(
        pods_api,
        watcher::Config::default()
            .labels(selector)
            .timeout(WATCH_SECONDS),
    )
    .default_backoff()
    .reflect(pod_writer)
    .map(|e| e.err());
    let mut events = std::pin::pin!(stream::select(workload_events, pod_events));

    let mut first_seen: HashMap<(String, String, String), Instant> = HashMap::new();
    // Whether the template ran `images` at some point: a GitOps wait that never saw it means the
    // agent never applied the commit, which is not a failed rollout.
    let mut applied = false;
    let mut still = String::new();
    let mut last_line = String::new();
    let mut last_watch_error = String::new();
    loop {
        let now = Instant::now();
        if let Some(workload) = workloads.get(&key) {
            let template = workload.template().and_then(|t| t.spec.as_ref());
            let runs = |images| template.is_some_and(|spec| pods::spec_runs(spec, images));
            let rollout = if runs(images) {
                applied = true;
                workload.rollout()
            } else if let Some(before) = applying.filter(|before| runs(before)) {
                still = template
                    .map(|spec| pods::images_of(spec, before))
                    .unwrap_or_default();
                let wanted: Vec<String> = images.iter().map(|(c, i)| format!("{c}={i}")).collect();
                Rollout::Waiting(format!(
                    "waiting for the pod template to run {}",
                    wanted.join(" ")
                ))
            } else {
                let now = template.map(|spec| pods::images_of(spec, images));
                return Err(WaitError::Replaced(
                    now.unwrap_or_else(|| "no pod template".into()),
                ));
            };
            match rollout {
                Rollout::Complete => return Ok((*workload).clone()),
                Rollout::Failed(reason) => return Err(WaitError::Failed(reason)),
                Rollout::Waiting(line) => {
                    if line != last_line {
                        eprintln!("{label}: {line}, {}s", started.elapsed().as_secs());
                        last_line = line;
                    }
                }
            }
        }

        // Pod problems must persist for the grace period; forget the ones that cleared.
        let current: Vec<PodProblem> =
            pods::problems(pods.state().iter().map(|p| p.as_ref()), images);
        first_seen.retain(|k, _| current.iter().any(|p| &p.key() == k));
        let mut wake = deadline;
        for problem in &current {
            let since = *first_seen.entry(problem.key()).or_insert_with(|| {
                eprintln!(
                    "{label}: {problem} (failing in {}s unless it clears)",
                    FAILURE_GRACE.as_secs()
                );
                now
            });
            if now >= since + FAILURE_GRACE {
                return Err(WaitError::Failed(problem.to_string()));
            }
            wake = wake.min(since + FAILURE_GRACE);
        }
        let state = || {
            if last_line.is_empty() {
                "no status yet".to_string()
            } else {
                last_line.clone()
            }
        };
        // `still` is only ever set by a GitOps wait (one with `applying`).
        if now >= deadline && !applied && !still.is_empty() {
            return Err(WaitError::NotApplied { timeout, still });
        }
        if now >= deadline {
            return Err(WaitError::Failed(format!(
                "timed out after {}: {}",
                humantime::format_duration(timeout),
                state()
            )));
        }

        tokio::select! {
            event = events.next() => match event {
                Some(Some(error)) => {
                    if let Some(refusal) = refusal(&error) {
                        return Err(WaitError::Refused(refusal));
                    }
                    // Other watch errors are retried by the backoff; say so once per distinct
                    // error so an API server restart is visible without flooding the log.
                    let error = error.to_string();
                    if error != last_watch_error {
                        eprintln!("{label}: watch interrupted ({error}); reconnecting");
                        last_watch_error = error;
                    }
                }
                Some(None) => last_watch_error.clear(),
                None => return Err(WaitError::Failed("the watch ended unexpectedly".into())),
            },
            cause = abort.requested() => {
                return Err(WaitError::Aborted { cause, state: state() });
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// The API server's refusal (401, 403) inside a watch error, rendered with the fix; `None` for
/// the faults worth retrying.
fn refusal(error: &watcher::Error) -> Option<String> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status,
        watcher::Error::WatchError(status) => status,
        _ => return None,
    };
    matches!(status.code, 401 | 403).then(|| describe_status(status))
}
