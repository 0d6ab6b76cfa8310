//! Waiting for a rollout by watching, not polling: the workload and its pods are mirrored by
//! kube-runtime reflectors, and every event re-evaluates kubectl's completion rule and the pods'
//! health. The watchers re-list after `410 Gone` and reconnect with backoff when the API server
//! goes away, so the wait survives watch expiry and API server restarts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

use super::pods::{self, PodProblem};
use super::workload::{Rollout, Workload};

/// How long a new pod may sit in a failing state (image pull error, crash loop, unschedulable)
/// before the rollout is declared failed. Long enough to ride out one transient registry error
/// and the first kubelet retry, short enough to beat a 10-minute progress deadline by far.
pub const FAILURE_GRACE: Duration = Duration::from_secs(15);

/// Waits until the workload's rollout is complete, or fails with a one-line reason.
///
/// `images` (container name → image) identifies the pods of the template being rolled out.
/// `label` prefixes progress lines (`deployment/web`).
pub async fn rollout<K: Workload>(
    client: kube::Client,
    namespace: &str,
    name: &str,
    selector: &str,
    images: &BTreeMap<String, String>,
    timeout: Duration,
    label: &str,
) -> Result<K, String> {
    let started = Instant::now();
    let deadline = started + timeout;
    let key = ObjectRef::<K>::new(name).within(namespace);
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let pods_api = Api::<Pod>::namespaced(client, namespace);

    let (workloads, workload_writer) = reflector::store::<K>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let workload_events = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .reflect(workload_writer)
    .map(|e| e.err().map(|e| e.to_string()));
    let pod_events = watcher(pods_api, watcher::Config::default().labels(selector))
        .default_backoff()
        .reflect(pod_writer)
        .map(|e| e.err().map(|e| e.to_string()));
    let mut events = std::pin::pin!(stream::select(workload_events, pod_events));

    let mut first_seen: HashMap<(String, String, String), Instant> = HashMap::new();
    let mut last_line = String::new();
    let mut last_watch_error = String::new();
    loop {
        let now = Instant::now();
        if let Some(workload) = workloads.get(&key) {
            match workload.rollout() {
                Rollout::Complete => return Ok((*workload).clone()),
                Rollout::Failed(reason) => return Err(reason),
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
                return Err(problem.to_string());
            }
            wake = wake.min(since + FAILURE_GRACE);
        }
        if now >= deadline {
            let state = if last_line.is_empty() {
                "no status yet".into()
            } else {
                last_line
            };
            return Err(format!(
                "timed out after {}: {state}",
                humantime::format_duration(timeout)
            ));
        }

        tokio::select! {
            event = events.next() => match event {
                // Watch errors are retried by the backoff; say so once per distinct error so an
                // API server restart is visible in the log without flooding it.
                Some(Some(error)) if error != last_watch_error => {
                    eprintln!("{label}: watch interrupted ({error}); reconnecting");
                    last_watch_error = error;
                }
                Some(None) => last_watch_error.clear(),
                Some(Some(_)) => {}
                None => return Err("the watch ended unexpectedly".into()),
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}
