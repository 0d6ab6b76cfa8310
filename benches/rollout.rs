//! How `out` compares with `kubectl set image` + `kubectl rollout status` on the test control plane.
//!
//! 1. Completion latency: the time from the moment the controller's status says the rollout is
//!    complete (seen by an independent watch in this process) to the tool exiting.
//! 2. Fan-out: one put rolling 20 Deployments, beside 20 sequential `kubectl set image` +
//!    `kubectl rollout status`.
//!
//! Run: `cargo bench --bench rollout` (after `scripts/setup.sh`). Prints a table; asserts nothing.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use image_rollout_resource::cluster::workload::{Rollout, Workload};
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};
use serde_json::json;
use testbed::cluster::{ControlPlane, kubectl_path};
use testbed::step;

const RUNS: usize = 7;
const FAN_OUT: usize = 20;
const REPO: &str = "registry.example.test/bench/app";

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cp = ControlPlane::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = runtime.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(cp.kubeconfig_path()).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        Client::try_from(config).expect("client")
    });

    let ns = cp.namespace("bench");
    let mut out_latency = Vec::new();
    let mut kubectl_latency = Vec::new();
    for run in 0..RUNS {
        for (tool, samples) in [("out", &mut out_latency), ("kubectl", &mut kubectl_latency)] {
            let name = format!("{tool}-{run}");
            create(&cp, &ns, &name, 2);
            let completed = watch_completion(&runtime, &client, &ns, &name);
            let image = format!("{REPO}@sha256:{}", format!("{:02x}", run + 1).repeat(32));
            let exited = match tool {
                "out" => {
                    run_out(&cp, &ns, &[name.as_str()], &image);
                    Instant::now()
                }
                _ => {
                    kubectl_set_image_and_wait(&cp, &ns, &name, &image);
                    Instant::now()
                }
            };
            let completed = wait_for(&completed);
            samples.push(exited.saturating_duration_since(completed));
        }
    }

    let names: Vec<String> = (0..FAN_OUT).map(|i| format!("fan-{i}")).collect();
    for name in &names {
        create(&cp, &ns, name, 1);
    }
    let image_a = format!("{REPO}@sha256:{}", "aa".repeat(32));
    let image_b = format!("{REPO}@sha256:{}", "bb".repeat(32));
    let started = Instant::now();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    run_out(&cp, &ns, &refs, &image_a);
    let out_fan_out = started.elapsed();
    let started = Instant::now();
    for name in &names {
        kubectl_set_image_and_wait(&cp, &ns, name, &image_b);
    }
    let kubectl_fan_out = started.elapsed();

    println!(
        "\nrollout benchmark: {RUNS} runs, Deployments of 2 replicas, kwok nodes, loopback control plane"
    );
    println!("{:<58} {:>10} {:>10} {:>7}", "", "out", "kubectl", "ratio");
    let (o, k) = (median(&out_latency), median(&kubectl_latency));
    println!(
        "{:<58} {:>8}ms {:>8}ms {:>7.2}",
        "completion seen by a watch -> tool exits (median)",
        o.as_millis(),
        k.as_millis(),
        o.as_secs_f64() / k.as_secs_f64()
    );
    println!(
        "{:<58} {:>9.1}s {:>9.1}s {:>7.2}",
        format!("{FAN_OUT} Deployments: one put vs sequential set image + status"),
        out_fan_out.as_secs_f64(),
        kubectl_fan_out.as_secs_f64(),
        out_fan_out.as_secs_f64() / kubectl_fan_out.as_secs_f64()
    );
    println!(
        "out latencies (ms): {:?}",
        out_latency
            .iter()
            .map(Duration::as_millis)
            .collect::<Vec<_>>()
    );
    println!(
        "kubectl latencies (ms): {:?}",
        kubectl_latency
            .iter()
            .map(Duration::as_millis)
            .collect::<Vec<_>>()
    );
}

/// Creates a Deployment and waits for its first rollout.
fn create(cp: &ControlPlane, ns: &str, name: &str, replicas: u32) {
    cp.apply(ns, &deployment(name, replicas));
    let object = format!("deploy/{name}");
    cp.kubectl_ok(&["-n", ns, "rollout", "status", &object, "--timeout=120s"]);
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: app, image: \"{REPO}:v1\"}}]}}\n"
    )
}

fn run_out(cp: &ControlPlane, ns: &str, names: &[&str], image: &str) {
    let workloads: Vec<String> = names.iter().map(|n| format!("deployment/{n}")).collect();
    let digest = image.split('@').nth(1).expect("digest");
    let dir = tempfile::tempdir().expect("tempdir");
    let request = json!({
        "source": {"repository": REPO, "kubeconfig": cp.kubeconfig_yaml(), "namespace": ns, "workloads": workloads},
        "params": {"digest": digest, "timeout": "5m"},
    });
    step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]).json();
}

fn kubectl_set_image_and_wait(cp: &ControlPlane, ns: &str, name: &str, image: &str) {
    let kubeconfig = cp
        .kubeconfig_path()
        .to_str()
        .expect("utf-8 path")
        .to_string();
    for args in [
        vec![
            "-n",
            ns,
            "set",
            "image",
            &format!("deploy/{name}"),
            &format!("app={image}"),
        ],
        vec![
            "-n",
            ns,
            "rollout",
            "status",
            &format!("deploy/{name}"),
            "--timeout=5m",
        ],
    ] {
        let status = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("kubectl");
        assert!(status.success(), "kubectl {args:?}");
    }
}

/// Starts a watch on the Deployment that records when its status first satisfies kubectl's
/// completion rule for a *new* generation (the one after the upcoming patch).
fn watch_completion(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    ns: &str,
    name: &str,
) -> Arc<Mutex<Option<Instant>>> {
    let seen = Arc::new(Mutex::new(None));
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let record = seen.clone();
    runtime.spawn(async move {
        let mut events = std::pin::pin!(watcher(api, config).applied_objects());
        while let Some(Ok(d)) = events.next().await {
            if d.metadata.generation.unwrap_or(0) > 1 && d.rollout() == Rollout::Complete {
                record.lock().expect("lock").get_or_insert(Instant::now());
                return;
            }
        }
    });
    seen
}

fn wait_for(seen: &Arc<Mutex<Option<Instant>>>) -> Instant {
    for _ in 0..200 {
        if let Some(at) = *seen.lock().expect("lock") {
            return at;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the watch never saw the rollout complete");
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
