//! The headline latency: a webhook POST to "Deployment rolled out", under a real Concourse with the
//! shipped pipeline, split into Concourse's own scheduling, the cluster's rollout and the
//! resource's steps.
//!
//! Each run pushes a new app build and runs the Actions step's script; the benchmark then follows
//! the build through the ATC's API (polled every 50 ms) and the Deployment through a watch:
//!
//!   POST → check found the digest → deploy build started → Deployment patched → rolled out → build
//!   succeeded
//!
//! The resource's own share is measured apart, on the same servers: the same static binaries the
//! image holds, run with the same `source` (check, in, a server-side dry-run put of the next
//! digest, and the in after the put).
//!
//! Run: `cargo bench --bench concourse` (after `scripts/setup.sh`; needs the Concourse bundle).
//! `IRR_BENCH_RUNS` (default 7) runs; up.sh's `INTERVAL`/`SCHED_INTERVAL` pass through (default 1s,
//! Concourse's own defaults are 10s). Prints a table; asserts nothing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use image_rollout_resource::cluster::workload::{Rollout, Workload};
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};
use serde_json::{Value, json};
use testbed::concourse::Bundle;
use testbed::concourse::rig::{APP, Rig};
use testbed::image::steps_dir;
use testbed::step;

#[derive(Default, Clone, Copy)]
struct Seen {
    patched: Option<Instant>,
    rolled_out: Option<Instant>,
}

const PHASES: [&str; 5] = [
    "POST → check found the digest",
    "→ deploy build started",
    "→ Deployment patched",
    "→ rolled out (cluster)",
    "→ build succeeded",
];

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(bundle) = Bundle::find("cargo bench --bench concourse") else {
        return;
    };
    let runs: usize = std::env::var("IRR_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let settings: Vec<(&str, String)> = ["INTERVAL", "SCHED_INTERVAL"]
        .into_iter()
        .map(|k| (k, std::env::var(k).unwrap_or_else(|_| "1s".into())))
        .collect();
    let settings_ref: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rig = Rig::start(&bundle, &settings_ref);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = runtime.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(rig.cluster.kubeconfig_path()).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        Client::try_from(config).expect("client")
    });

    let mut phases: Vec<Vec<Duration>> = vec![Vec::new(); PHASES.len()];
    let mut totals = Vec::new();
    // Run 0 is a warm-up: the first build also pulls the resource image.
    for run in 0..=runs {
        let digest = rig.push_app(&format!("bench-{run}"));
        let generation: i64 = rig.deployment("{.metadata.generation}").parse().unwrap();
        let seen = watch(&runtime, &client, &rig.namespace, generation);
        let build = (run + 1).to_string();
        let posted = Instant::now();
        let out = rig.actions_step(rig.var("webhook_token"));
        assert!(out.status.success(), "{out:?}");
        let found = poll(|| rig.versions().first() == Some(&digest));
        let started = poll(|| {
            rig.builds()
                .iter()
                .any(|b| b.name == build && b.status != "pending")
        });
        let done = poll(|| rig.builds().iter().any(|b| b.name == build && b.finished()));
        let seen = *seen.lock().unwrap();
        let (Some(patched), Some(rolled_out)) = (seen.patched, seen.rolled_out) else {
            panic!("run {run}: the watch saw no rollout");
        };
        assert_eq!(rig.deployed_image(), format!("{}@{digest}", rig.repository));
        let marks = [posted, found, started, patched, rolled_out, done];
        if run > 0 {
            for (i, pair) in marks.windows(2).enumerate() {
                phases[i].push(pair[1].saturating_duration_since(pair[0]));
            }
            totals.push(rolled_out - posted);
        }
    }

    let steps = own_steps(&rig, runs);
    let interval = &settings[0].1;
    let sched = &settings[1].1;
    println!(
        "\nwebhook POST → Deployment rolled out, {runs} runs (medians; INTERVAL={interval}, \
         SCHED_INTERVAL={sched}; 2 replicas, maxSurge 1):\n"
    );
    println!("| phase | median | min | max |\n|---|---:|---:|---:|");
    for (name, samples) in PHASES.iter().zip(&phases) {
        println!(
            "| {name} | {} | {} | {} |",
            ms(median(samples)),
            ms(*samples.iter().min().unwrap()),
            ms(*samples.iter().max().unwrap())
        );
    }
    println!(
        "| **POST → rolled out** | **{}** | {} | {} |",
        ms(median(&totals)),
        ms(*totals.iter().min().unwrap()),
        ms(*totals.iter().max().unwrap())
    );
    let ours: Duration = steps.iter().map(|(_, d)| *d).sum();
    let cluster = median(&phases[3]);
    let total = median(&totals);
    println!("\nthe resource's own steps, alone on the same servers (medians of {runs}):\n");
    for (name, d) in &steps {
        println!("  {name}: {}", ms(*d));
    }
    println!(
        "\nof the median {}: the resource's steps {} ({:.0}%), the cluster's rollout {} ({:.0}%), \
         Concourse's scheduling and containers the rest, {} ({:.0}%)",
        ms(total),
        ms(ours),
        pct(ours, total),
        ms(cluster),
        pct(cluster, total),
        ms(total.saturating_sub(ours + cluster)),
        pct(total.saturating_sub(ours + cluster), total)
    );
}

/// A watch that records when the Deployment's generation first moves past `generation` (the
/// patch) and when that new generation is rolled out by kubectl's rules.
fn watch(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    ns: &str,
    generation: i64,
) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={APP}"));
    let record = seen.clone();
    runtime.spawn(async move {
        let mut events = std::pin::pin!(watcher(api, config).applied_objects());
        while let Some(Ok(d)) = events.next().await {
            if d.metadata.generation.unwrap_or(0) <= generation {
                continue;
            }
            let mut seen = record.lock().expect("lock");
            seen.patched.get_or_insert(Instant::now());
            if d.rollout() == Rollout::Complete {
                seen.rolled_out = Some(Instant::now());
                return;
            }
        }
    });
    seen
}

/// Polls `done` every 50 ms (for at most 2 minutes); the instant it first held.
fn poll(mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if done() {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within 2 minutes");
}

/// The wall time of the resource's steps of one deploy, run alone with the pipeline's `source`:
/// check, in, a put (server-side dry run of another digest: it reads, patches and returns) and
/// the in after the put.
fn own_steps(rig: &Rig, runs: usize) -> Vec<(&'static str, Duration)> {
    let source = json!({
        "repository": rig.repository,
        "tag": "main",
        "username": rig.var("registry_username"),
        "password": rig.var("registry_password"),
        "insecure": true,
        "namespace": rig.namespace,
        "deployment": APP,
        "server": rig.var("kubernetes_server"),
        "token": rig.service_account_token,
        "certificate_authority": rig.var("kubernetes_ca"),
    });
    let next = rig.push_app("bench-dry-run");
    let dir = tempfile::tempdir().unwrap();
    // The image's binary under the steps' names, as the image links them.
    let links = tempfile::tempdir().unwrap();
    let bin = steps_dir(links.path());
    let version = json!({"digest": next});
    let requests: [(&str, &str, Option<&Path>, Value); 4] = [
        ("check", "check", None, json!({"source": source})),
        (
            "in",
            "in",
            Some(dir.path()),
            json!({"source": source, "version": version}),
        ),
        (
            "out (read, patch, return)",
            "out",
            Some(dir.path()),
            json!({"source": source, "params": {"digest": next, "dry_run": true}}),
        ),
        (
            "in after the put",
            "in",
            Some(dir.path()),
            json!({"source": source, "version": version}),
        ),
    ];
    requests
        .iter()
        .map(|(name, binary, dir, request)| {
            let binary = bin.join(binary);
            let mut samples = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                let result = step::run(binary.to_str().unwrap(), *dir, request, &[]);
                samples.push(started.elapsed());
                assert!(result.ok(), "{name}: {}", result.stderr);
            }
            (*name, median(&samples))
        })
        .collect()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn pct(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(f64::EPSILON)
}
