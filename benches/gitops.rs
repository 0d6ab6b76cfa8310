//! GitOps mode, measured on loopback with the real parts of `tests/gitops.rs` and `tests/flux.rs`.
//!
//! 1. A config repository with a long history (5,000 commits, tens of MB of packed objects):
//!    bytes and time for `out` to fetch, edit, commit and push, beside `git clone --depth 1
//!    --single-branch` and a full `git clone` of the same repository (bytes from lighttpd's access
//!    log, response bodies of every request).
//! 2. With Flux on the test control plane: put start → commit pushed, and commit pushed → Flux
//!    applied → rollout complete (Flux polls every 3 s here).
//!
//! Run: `cargo bench --bench gitops` (after `scripts/setup.sh`). Prints a table; asserts nothing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::cluster::ControlPlane;
use testbed::flux::Flux;
use testbed::git::{GitServer, PASSWORD, USER, git};

const REPO: &str = "registry.example.test/bench/app";
const COMMITS: usize = 5000;
const BLOB: usize = 8 * 1024;
const RUNS: usize = 5;

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
    )
}

fn digest(n: usize) -> String {
    format!("sha256:{}", format!("{:02x}", n % 256).repeat(32))
}

fn source(server: &GitServer) -> Value {
    json!({"repository": REPO, "git": {"uri": server.url, "paths": ["deploy"], "username": USER,
           "password": PASSWORD, "insecure": true}})
}

/// `COMMITS` commits of incompressible 8 KiB files (one of 100 paths each), then the manifest:
/// written by `git fast-import` straight into the bare repository.
fn long_history(server: &GitServer) {
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(server.bare())
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut input = std::io::BufWriter::new(child.stdin.take().unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..=COMMITS {
        let (path, content) = if i == COMMITS {
            (
                "deploy/deployment.yaml".to_string(),
                deployment(&format!("{REPO}:v1")).into_bytes(),
            )
        } else {
            let bytes = (0..BLOB)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            (format!("data/file-{}.bin", i % 100), bytes)
        };
        let message = format!("commit {i}");
        write!(
            input,
            "commit refs/heads/main\nmark :{}\ncommitter Seed <seed@example.com> {} +0000\ndata {}\n{message}\n",
            i + 1,
            1_700_000_000 + i,
            message.len()
        )
        .unwrap();
        if i > 0 {
            writeln!(input, "from :{i}").unwrap();
        }
        writeln!(input, "M 100644 inline {path}\ndata {}", content.len()).unwrap();
        input.write_all(&content).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    assert!(child.wait().unwrap().success(), "fast-import failed");
}

/// Runs `work` `RUNS` times: the median time, and the response bytes lighttpd sent per run to
/// clients whose User-Agent starts with `agent`.
fn measured(server: &GitServer, agent: &str, mut work: impl FnMut(usize)) -> (Duration, u64) {
    // lighttpd writes its access log in batches: let earlier requests land first.
    std::thread::sleep(Duration::from_secs(3));
    let before = server.bytes_sent(agent);
    let mut samples = Vec::new();
    for run in 0..RUNS {
        let start = Instant::now();
        work(run);
        samples.push(start.elapsed());
    }
    std::thread::sleep(Duration::from_secs(3));
    let bytes = (server.bytes_sent(agent) - before) / RUNS as u64;
    (median(samples), bytes)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = GitServer::start();
    let start = Instant::now();
    long_history(&server);
    let packed = server.git(&["count-objects", "-vH"]);
    println!(
        "history: {COMMITS} commits of {BLOB} B files, written in {:.1?}; {}",
        start.elapsed(),
        packed
            .lines()
            .find(|l| l.starts_with("size-pack"))
            .unwrap_or_default()
    );

    let mut rows = Vec::new();
    let (time, bytes) = measured(&server, "image-rollout-resource", |run| {
        let dir = tempfile::tempdir().unwrap();
        let request = json!({"source": source(&server), "params": {"digest": digest(run + 1)}});
        testbed::step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]).json();
    });
    rows.push(("out (fetch depth 1, edit, commit, push)", time, bytes));
    let authenticated = server
        .url
        .replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    for (label, args) in [
        (
            "git clone --depth 1 --single-branch",
            vec!["clone", "--quiet", "--depth", "1", "--single-branch"],
        ),
        ("git clone (full history)", vec!["clone", "--quiet"]),
    ] {
        let (time, bytes) = measured(&server, "git/", |_| {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("clone");
            let mut args = args.clone();
            args.extend([authenticated.as_str(), target.to_str().unwrap()]);
            git(dir.path(), &args);
        });
        rows.push((label, time, bytes));
    }
    println!("\n| what | median of {RUNS} | bytes from the server |\n|---|---|---|");
    for (label, time, bytes) in &rows {
        println!("| {label} | {time:.2?} | {} |", mb(*bytes));
    }

    flux_phases();
}

/// put start → pushed, pushed → rollout complete, with Flux applying the commits.
fn flux_phases() {
    let cp = ControlPlane::start();
    let flux = Flux::start(&cp);
    let server = GitServer::start();
    let ns = cp.namespace("bench-gitops");
    server.commit(
        "main",
        &[("deploy/deployment.yaml", &deployment(&format!("{REPO}:v1")))],
        "seed",
    );
    flux.sync(&cp, &ns, &server.url, USER, PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(180);
    while cp.kubectl(&["-n", &ns, "get", "deploy/web"]).status.code() != Some(0) {
        assert!(
            Instant::now() < deadline,
            "Flux never applied the seed:\n{}",
            flux.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut source = source(&server);
    source["namespace"] = json!(ns);
    source["deployment"] = json!("web");
    source["kubeconfig"] = json!(cp.kubeconfig_yaml());
    let (mut push, mut apply) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let request =
            json!({"source": source, "params": {"digest": digest(run + 1), "timeout": "5m"}});
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_out"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("out");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let mut pushed = None;
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            if line.unwrap().starts_with("pushed ") {
                pushed = Some(Instant::now());
            }
        }
        assert!(child.wait().unwrap().success(), "put failed");
        let (pushed, done) = (pushed.expect("a pushed line"), Instant::now());
        push.push(pushed - start);
        apply.push(done - pushed);
    }
    println!(
        "\n| with Flux (interval 3 s), median of {RUNS} | |\n|---|---|\n| put start → commit pushed | {:.2?} |\n| pushed → Flux applied → rollout complete | {:.2?} |",
        median(push),
        median(apply)
    );
}
