//! GitOps end to end: `out` commits to a real Git server (git http-backend behind lighttpd), a
//! real Flux (source-controller + kustomize-controller, built from the Go module proxy) applies the
//! commit to a real control plane, and `out` waits as the read-only identity of
//! `pipeline/rbac-readonly.yaml` until the rollout is complete — or, for a crashing build, fails
//! with the pod's reason, pushes a revert commit and waits for Flux to bring the previous digest
//! back. The GitHub Action does the same with the same keys as inputs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::action;
use testbed::cluster::{CRASH_MESSAGE, ControlPlane, PodFailure};
use testbed::flux::Flux;
use testbed::git::{GitServer, PASSWORD, USER};
use testbed::step::{self, StepResult};

const REPO: &str = "registry.example.test/team/app";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn deployment(image: &str) -> String {
    format!(
        r#"# deployed by Flux from this repository
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: app
          image: {image}   # written by image-rollout
"#
    )
}

fn out(source: &Value, digest: &str) -> StepResult {
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "params": {"digest": digest, "timeout": "3m"}});
    let result = step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]);
    result.assert_never_prints(PASSWORD);
    result
}

fn image(cp: &ControlPlane, ns: &str) -> String {
    cp.template_image(ns, "deploy/web")
}

fn rolled_out(cp: &ControlPlane, ns: &str, timeout: &str) -> String {
    cp.kubectl_ok(&[
        "-n",
        ns,
        "rollout",
        "status",
        "deploy/web",
        &format!("--timeout={timeout}"),
    ])
}

#[test]
fn flux_applies_the_pushed_digest_and_a_crashing_build_is_reverted_through_git() {
    let cp = ControlPlane::shared();
    let mut flux = Flux::start(cp);
    let server = GitServer::start();
    let ns = cp.namespace("gitops");
    server.commit(
        "main",
        &[("deploy/deployment.yaml", &deployment(&format!("{REPO}:v1")))],
        "seed",
    );
    flux.sync(cp, &ns, &server.url, USER, PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(180);
    while cp.kubectl(&["-n", &ns, "get", "deploy/web"]).status.code() != Some(0) {
        flux.ensure_running();
        assert!(
            Instant::now() < deadline,
            "Flux never applied the seed commit:\n{}",
            flux.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    rolled_out(cp, &ns, "120s");

    // The shipped read-only identity: it can watch, and it cannot write.
    cp.apply(&ns, include_str!("../pipeline/rbac-readonly.yaml"));
    let token = cp
        .kubectl_ok(&["create", "token", "image-rollout-readonly", "-n", &ns])
        .trim()
        .to_string();
    let account = format!("system:serviceaccount:{ns}:image-rollout-readonly");
    let can = |verb: &str| {
        let out = cp.kubectl(&[
            "auth",
            "can-i",
            verb,
            "deployments",
            "-n",
            &ns,
            "--as",
            &account,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        (can("watch"), can("patch"), can("update")),
        ("yes".into(), "no".into(), "no".into())
    );
    let source = json!({
        "repository": REPO,
        "namespace": ns,
        "deployment": "web",
        "kubeconfig": cp.kubeconfig_for_token(&ns, &token),
        "git": {"uri": server.url, "paths": ["deploy"], "username": USER, "password": PASSWORD,
                "insecure": true, "author_name": "CI", "author_email": "ci@example.test"},
    });

    // A healthy build: pushed, applied by Flux, rolled out; `out` returns after all of it.
    let d1 = digest(1);
    let started = Instant::now();
    let result = out(&source, &d1);
    let output = result.json();
    eprintln!(
        "put (push → Flux → rollout complete) took {:?}\n{}",
        started.elapsed(),
        result.stderr
    );
    assert_eq!(image(cp, &ns), format!("{REPO}@{d1}"));
    let status = rolled_out(cp, &ns, "1s");
    assert!(status.contains("successfully rolled out"), "{status}");
    for line in [
        "waiting for the agent to apply",
        "deployment/web: waiting for the pod template to run app=",
        "deployment/web: rollout complete",
    ] {
        assert!(
            result.stderr.contains(line),
            "{line:?} missing:\n{}",
            result.stderr
        );
    }
    assert!(result.stderr.contains("/2 updated, "), "{}", result.stderr);
    let head = server.git(&["rev-parse", "main"]);
    let commit = output["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "commit")
        .unwrap()["value"]
        .clone();
    assert_eq!(commit, json!(head.trim()));
    let healthy = server.git(&["show", "main:deploy/deployment.yaml"]);
    assert_eq!(healthy, deployment(&format!("{REPO}@{d1}")));

    // A crashing build: the put fails with the pod's reason, reverts in Git, and Flux brings the
    // previous digest back.
    let d2 = digest(2);
    cp.fail_images(&format!("{REPO}@{d2}"), PodFailure::CrashLoop);
    let result = out(&source, &d2);
    let line = result.error_line();
    for part in [
        "deployment/web did not roll out",
        "CrashLoopBackOff",
        CRASH_MESSAGE,
        "reverted",
        &format!("back on deployment/web app={REPO}@{d1}"),
    ] {
        assert!(
            line.contains(part),
            "{part:?} not in {line}\n{}",
            result.stderr
        );
    }
    server.git(&["fsck", "--strict", "--no-dangling"]);
    let log = server.git(&["log", "--format=%s", "-3", "main"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert!(subjects[0].starts_with("revert "), "{log}");
    assert_eq!(subjects[1], format!("deploy {REPO}@{d2}"));
    assert_eq!(
        server.git(&["show", "main:deploy/deployment.yaml"]),
        healthy
    );
    assert_eq!(image(cp, &ns), format!("{REPO}@{d1}"));
    rolled_out(cp, &ns, "60s");
    flux.ensure_running();

    // The agent never applies the commit (its Kustomization is suspended): the put says that, not
    // "did not roll out", and reverts. With the optional Role it then waits until Flux's source
    // holds the revert, so that resuming the Kustomization applies the revert, never the commit.
    let flux_rbac = include_str!("../pipeline/rbac-readonly-flux.yaml").replace("ml-bot", &ns);
    cp.apply(&ns, &flux_rbac);
    let suspend = |on: bool| {
        cp.kubectl_ok(&[
            "-n",
            &ns,
            "patch",
            "kustomization/apps",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"suspend":{on}}}}}"#),
        ])
    };
    suspend(true);
    let d3 = digest(3);
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "params": {"digest": d3, "timeout": "20s", "restore_timeout": "90s"}});
    let result = step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]);
    result.assert_never_prints(PASSWORD);
    let line = result.error_line();
    let deploy = server.git(&["rev-parse", "main~1"]);
    let revert = server.git(&["rev-parse", "main"]);
    for part in [
        &format!("the agent did not apply {} within 20s", deploy.trim()),
        "not applied by the agent within 20s: the pod template still runs app=",
        &format!("reverted {} on main with {}", deploy.trim(), revert.trim()),
        &format!("the cluster never ran {REPO}@{d3}"),
        &format!(
            "Flux reports gitrepository/config at main@sha1:{}",
            revert.trim()
        ),
        "kustomization/apps is suspended",
    ] {
        assert!(
            line.contains(part),
            "{part:?} not in {line}\n{}",
            result.stderr
        );
    }
    assert!(!line.contains("did not roll out"), "{line}");
    // Resumed at once, Flux applies the revert; the deploy commit's digest never runs.
    suspend(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_eq!(image(cp, &ns), format!("{REPO}@{d1}"));
        let applied = cp.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "kustomization/apps",
            "-o",
            "jsonpath={.status.lastAppliedRevision}",
        ]);
        if applied.contains(revert.trim()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Flux never applied the revert:\n{}",
            flux.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    flux.ensure_running();

    the_action_deploys_through_flux_and_reverts_a_crashing_build(cp, &server, &source);
    flux.ensure_running();
}

/// The same flow from the GitHub Action, with the same read-only keys as inputs: its wait returns
/// when Flux's rollout is complete, and a crashing build is reverted through Git. The debug build
/// of the binary runs it here (the image's own is `tests/action.rs`'s), as `resource action`.
fn the_action_deploys_through_flux_and_reverts_a_crashing_build(
    cp: &ControlPlane,
    server: &GitServer,
    source: &Value,
) {
    let ns = source["namespace"].as_str().unwrap();
    let action = |d: &str| {
        let image = format!("{REPO}@{d}");
        let kubeconfig = source["kubeconfig"].as_str().unwrap();
        let inputs = [
            ("image", image.as_str()),
            ("uri", server.url.as_str()),
            ("paths", "deploy"),
            ("username", USER),
            ("token", PASSWORD),
            ("insecure", "true"),
            ("namespace", ns),
            ("deployment", "web"),
            ("kubeconfig", kubeconfig),
            ("timeout", "3m"),
        ];
        let run = action::run(
            Path::new(env!("CARGO_BIN_EXE_resource")),
            &inputs,
            "https://github.com",
        );
        run.assert_never_prints(PASSWORD);
        run
    };

    let d4 = digest(4);
    let run = action(&d4);
    assert_eq!(run.output("changed"), "true", "{}", run.stderr);
    assert_eq!(image(cp, ns), format!("{REPO}@{d4}"));
    assert!(
        run.stderr.contains("deployment/web: rollout complete"),
        "{}",
        run.stderr
    );
    assert!(
        run.summary.contains("Rolled out: deployment/web"),
        "{}",
        run.summary
    );
    let healthy = server.git(&["show", "main:deploy/deployment.yaml"]);
    assert_eq!(healthy, deployment(&format!("{REPO}@{d4}")));

    let d5 = digest(5);
    cp.fail_images(&format!("{REPO}@{d5}"), PodFailure::CrashLoop);
    let error = action(&d5).error();
    for part in [
        "CrashLoopBackOff",
        "reverted",
        &format!("back on deployment/web app={REPO}@{d4}"),
    ] {
        assert!(error.contains(part), "{part:?} not in {error}");
    }
    assert_eq!(
        server.git(&["show", "main:deploy/deployment.yaml"]),
        healthy
    );
    assert_eq!(image(cp, ns), format!("{REPO}@{d4}"));
    server.git(&["fsck", "--strict", "--no-dangling"]);
}
