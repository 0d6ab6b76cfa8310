//! The `deploy` job end to end on loopback, as Concourse would run it: a Distribution registry and
//! a Kubernetes control plane on 127.0.0.1, a multi-arch app image pushed as `main`, and the
//! resource's `check` → `in` → `out` run with JSON on stdin and directories as argv[1].
//!
//! With the Concourse bundle (`IRR_CONCOURSE_BUNDLE`, default `../shared/concourse`), it runs the
//! real thing instead: the shipped pipeline under Concourse ([`concourse`]).
//!
//! Run it with `scripts/demo.sh` (which builds the binaries and the tools first).

#[path = "demo/concourse.rs"]
mod concourse;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use testbed::cluster::{ControlPlane, PodFailure};
use testbed::concourse::Bundle;
use testbed::concourse::rig::{APP, deployment};
use testbed::registry::{Auth, ImageSpec, Layout, Registry};

const NAMESPACE: &str = "ml-bot";
const RESOURCE: &str = "family-assistant-image";

fn main() {
    match Bundle::find(
        "the demo under a real Concourse; running the resource's steps by hand instead",
    ) {
        Some(bundle) => concourse::run(&bundle),
        None => by_hand(),
    }
}

/// The deploy job's steps run by hand, as the ATC would run them.
fn by_hand() {
    let started = Instant::now();
    step("starting a Distribution registry on 127.0.0.1");
    let registry = Registry::start(Auth::Open);
    let repository = registry.repository(&format!("werdnum/{APP}"));
    println!("   {repository}");

    step(
        "starting a Kubernetes control plane on 127.0.0.1 (etcd, apiserver, controllers, scheduler, 3 kwok nodes)",
    );
    let cluster = ControlPlane::start();
    println!("   {}", cluster.server());

    step(&format!(
        "GitHub Actions pushes the first build: {repository}:main (linux/amd64 + linux/arm64)"
    ));
    registry.push(
        &Layout::index(&ImageSpec::new("v1"), true),
        &format!("werdnum/{APP}"),
        "main",
    );

    step(&format!(
        "the app runs as deployment/{APP} in namespace {NAMESPACE}, 3 replicas, on the tag"
    ));
    cluster.kubectl_ok(&["create", "namespace", NAMESPACE]);
    cluster.apply(NAMESPACE, &deployment(&format!("{repository}:main"), 3, 2));
    cluster.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "rollout",
        "status",
        &format!("deploy/{APP}"),
        "--timeout=120s",
    ]);

    let source = json!({
        "repository": repository,
        "tag": "main",
        "insecure": true,
        "namespace": NAMESPACE,
        "deployment": APP,
        "kubeconfig": cluster.kubeconfig_yaml(),
    });
    let v1 = deploy_job(&source, None, 1).expect("build 1 deploys");

    step("GitHub Actions pushes the next build as main, then POSTs the check webhook");
    registry.push(
        &Layout::index(&ImageSpec::new("v2"), true),
        &format!("werdnum/{APP}"),
        "main",
    );
    let v2 = deploy_job(&source, Some(v1), 2).expect("build 2 deploys");

    step(
        "GitHub Actions pushes a broken build (it crashes on start) as main, then POSTs the webhook",
    );
    let broken = registry.push(
        &Layout::index(&ImageSpec::new("v3"), true),
        &format!("werdnum/{APP}"),
        "main",
    );
    // kwok plays the kubelets: make this digest's containers crash the way a real one would.
    cluster.fail_images(&format!("{repository}@{broken}"), PodFailure::CrashLoop);
    assert!(
        deploy_job(&source, Some(v2), 3).is_none(),
        "the broken build must fail the job"
    );
    println!("   the job failed with the pod's reason, and the Deployment is back on build 2");

    step("final state");
    print!(
        "{}",
        cluster.kubectl_ok(&["-n", NAMESPACE, "get", "deploy", APP, "-o", "wide"])
    );
    print!(
        "{}",
        cluster.kubectl_ok(&[
            "-n",
            NAMESPACE,
            "rollout",
            "history",
            &format!("deploy/{APP}")
        ])
    );
    step(&format!(
        "tearing down (whole demo: {}s)",
        started.elapsed().as_secs()
    ));
}

/// One run of the pipeline's `deploy` job: check finds the new digest, the triggered `get`
/// fetches it, the `put` rolls the Deployment to it. Returns the version it deployed, or `None`
/// when the put failed (the job fails).
fn deploy_job(source: &Value, previous: Option<Value>, build: u32) -> Option<Value> {
    step(&format!(
        "check (the webhook makes Concourse run it now){}",
        if previous.is_some() {
            ", from the last version"
        } else {
            ""
        }
    ));
    let versions = run(
        "check",
        None,
        &json!({"source": source, "version": previous}),
        &[],
    )
    .expect("check succeeds");
    let current = versions
        .as_array()
        .and_then(|v| v.last())
        .cloned()
        .expect("check found a version");

    let build_dir = tempfile::tempdir().expect("tempdir");
    let get_dir = build_dir.path().join(RESOURCE);
    std::fs::create_dir(&get_dir).expect("mkdir");
    step(&format!(
        "job deploy #{build}: get {RESOURCE} (trigger: true)"
    ));
    run(
        "in",
        Some(&get_dir),
        &json!({"source": source, "version": current}),
        &[],
    )
    .expect("get succeeds");
    println!(
        "   reference: {}",
        std::fs::read_to_string(get_dir.join("reference")).unwrap_or_default()
    );

    step(&format!(
        "job deploy #{build}: put {RESOURCE} (params: {{image: {RESOURCE}}})"
    ));
    let build_name = build.to_string();
    let env = [
        ("BUILD_TEAM_NAME", "main"),
        ("BUILD_PIPELINE_NAME", APP),
        ("BUILD_JOB_NAME", "deploy"),
        ("BUILD_NAME", build_name.as_str()),
        ("ATC_EXTERNAL_URL", "http://127.0.0.1:8080"),
    ];
    let result = run(
        "out",
        Some(build_dir.path()),
        &json!({"source": source, "params": {"image": RESOURCE, "timeout": "5m"}}),
        &env,
    )?;
    Some(result["version"].clone())
}

/// Runs one of the resource's binaries the way Concourse does, showing the request (credentials
/// elided) and streaming its stderr; returns its stdout JSON, or `None` if it failed.
fn run(binary: &str, dir: Option<&Path>, request: &Value, env: &[(&str, &str)]) -> Option<Value> {
    let mut shown = request.clone();
    if shown["source"].get("kubeconfig").is_some() {
        shown["source"]["kubeconfig"] = json!("((kubeconfig))");
    }
    let arg = dir.map(|d| format!(" {}", d.display())).unwrap_or_default();
    println!("   $ echo '{shown}' | /opt/resource/{binary}{arg}");
    let mut child = Command::new(bin_dir().join(binary))
        .args(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary}: {e} (run scripts/demo.sh, which builds it)")
        });
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        request.to_string().as_bytes(),
    )
    .expect("write request");
    let output = child.wait_with_output().expect("wait");
    if !output.status.success() {
        println!(
            "   -> exit {} (the step fails)",
            output.status.code().unwrap_or(-1)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("   -> {}", stdout.trim());
    Some(serde_json::from_str(&stdout).expect("stdout is JSON"))
}

/// The resource's binaries sit next to this example's directory (target/<profile>/).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/examples")
        .to_path_buf()
}

fn step(text: &str) {
    println!("\n== {text}");
}
