//! The test control plane (testbed::cluster) behaves like a real cluster, as seen by the real
//! kubectl: workloads roll out, failing images fail the way kubelets report it, and objects
//! survive an apiserver restart.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testbed::cluster::{
    CRASH_LOOP_MARKER, CRASH_MESSAGE, ControlPlane, NEVER_READY_MARKER, PULL_FAIL_MARKER,
    PodFailure,
};

fn deployment(name: &str, image: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
{extra_spec}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
"
    )
}

/// `kubectl get` with a jsonpath, trimmed.
fn jsonpath(cp: &ControlPlane, ns: &str, object: &str, path: &str) -> String {
    cp.kubectl_ok(&["get", "-n", ns, object, "-o", &format!("jsonpath={path}")])
        .trim()
        .to_owned()
}

/// Polls `f` until it returns Some, for at most `timeout`.
fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn deployment_rolls_out_to_a_new_image() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("deploy");
    cp.apply(&ns, &deployment("web", "example.com/web:v1", 3, ""));
    rollout_status(cp, &ns, "deployment/web");

    set_image(cp, &ns, "deployment/web", "example.com/web:v2");
    rollout_status(cp, &ns, "deployment/web");

    assert_eq!(
        jsonpath(
            cp,
            &ns,
            "deployment/web",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "2"
    );
    // Old pods go once kwok has processed their deletion; new ones run the new image.
    eventually("only new pods", Duration::from_secs(30), || {
        let pods = jsonpath(
            cp,
            &ns,
            "pods",
            r#"{range .items[*]}{.status.phase}/{.spec.containers[0].image}{"\n"}{end}"#,
        );
        (pods.lines().collect::<Vec<_>>() == vec!["Running/example.com/web:v2"; 3]).then_some(())
    });
}

/// `kubectl rollout status`, which must succeed.
fn rollout_status(cp: &ControlPlane, ns: &str, object: &str) {
    cp.kubectl_ok(&["rollout", "status", "-n", ns, object, "--timeout=90s"]);
}

/// `kubectl set image` of the `app` container.
fn set_image(cp: &ControlPlane, ns: &str, object: &str, image: &str) {
    cp.kubectl_ok(&["set", "image", "-n", ns, object, &format!("app={image}")]);
}

/// `kubectl rollout status`, expected to fail; returns its stderr.
fn rollout_fails(cp: &ControlPlane, ns: &str, object: &str, timeout: &str) -> String {
    let out = cp.kubectl(&[
        "rollout",
        "status",
        "-n",
        ns,
        object,
        &format!("--timeout={timeout}"),
    ]);
    assert!(!out.status.success(), "rollout of {object} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first container status of the pods of the Deployment's newest ReplicaSet: the pods with
/// `image`, as `phase ready waitingReason restartCount`.
fn new_pods(cp: &ControlPlane, ns: &str, image: &str) -> Vec<String> {
    let all = jsonpath(
        cp,
        ns,
        "pods",
        r#"{range .items[*]}{.spec.containers[0].image} {.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].restartCount}{"\n"}{end}"#,
    );
    all.lines()
        .filter_map(|l| l.strip_prefix(&format!("{image} ")).map(str::to_owned))
        .collect()
}

#[test]
fn image_pull_failure_ends_in_progress_deadline_exceeded() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("pullfail");
    let deadline = "  progressDeadlineSeconds: 10\n";
    cp.apply(&ns, &deployment("web", "example.com/web:v1", 2, deadline));
    rollout_status(cp, &ns, "deployment/web");

    let broken = format!("example.com/{PULL_FAIL_MARKER}/web:v2");
    set_image(cp, &ns, "deployment/web", &broken);
    // The new pods are Pending, ErrImagePull at first, then ImagePullBackOff, never ready.
    eventually("ImagePullBackOff", Duration::from_secs(30), || {
        let pods = new_pods(cp, &ns, &broken);
        (!pods.is_empty() && pods.iter().all(|p| p == "Pending false ImagePullBackOff 0"))
            .then_some(())
    });
    let err = rollout_fails(cp, &ns, "deployment/web", "60s");
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let progressing = r#"{.status.conditions[?(@.type=="Progressing")].reason}"#;
    assert_eq!(
        jsonpath(cp, &ns, "deployment/web", progressing),
        "ProgressDeadlineExceeded"
    );
    // The old pods kept serving throughout.
    assert_eq!(
        jsonpath(cp, &ns, "deployment/web", "{.status.availableReplicas}"),
        "2"
    );
    let message = jsonpath(
        cp,
        &ns,
        "pods",
        r#"{.items[*].status.containerStatuses[?(@.state.waiting)].state.waiting.message}"#,
    );
    assert!(
        message.contains(&format!("Back-off pulling image \"{broken}\"")),
        "{message}"
    );
}

#[test]
fn crash_loop_shows_in_pod_status() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("crashloop");
    let image = format!("example.com/web:{CRASH_LOOP_MARKER}");
    cp.apply(&ns, &deployment("web", &image, 1, ""));
    eventually("CrashLoopBackOff", Duration::from_secs(30), || {
        (new_pods(cp, &ns, &image) == ["Running false CrashLoopBackOff 1"]).then_some(())
    });
    let terminated = jsonpath(
        cp,
        &ns,
        "pods",
        "{.items[0].status.containerStatuses[0].lastState.terminated.exitCode}/{.items[0].status.containerStatuses[0].lastState.terminated.reason}/{.items[0].status.containerStatuses[0].lastState.terminated.message}",
    );
    assert_eq!(terminated, format!("1/Error/{CRASH_MESSAGE}"));
    let ready = r#"{.items[0].status.conditions[?(@.type=="Ready")].status}"#;
    assert_eq!(jsonpath(cp, &ns, "pods", ready), "False");
    let err = rollout_fails(cp, &ns, "deployment/web", "3s");
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn never_ready_pods_run_without_becoming_ready() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("neverready");
    let image = format!("example.com/web:{NEVER_READY_MARKER}");
    cp.apply(&ns, &deployment("web", &image, 1, ""));
    eventually("a running pod", Duration::from_secs(30), || {
        // No waiting reason: nothing but readiness is wrong.
        (new_pods(cp, &ns, &image) == ["Running false  0"]).then_some(())
    });
    let err = rollout_fails(cp, &ns, "deployment/web", "3s");
    assert!(err.contains("timed out"), "{err}");
}

/// What `out` needs: one digest of a repository fails while another of the same one works.
#[test]
fn fail_images_makes_one_exact_digest_fail() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("digest");
    let good = format!("example.com/digest-test@sha256:{}", "a".repeat(64));
    let bad = format!("example.com/digest-test@sha256:{}", "b".repeat(64));
    cp.fail_images(&bad, PodFailure::ImagePull);
    cp.apply(&ns, &deployment("web", &good, 2, ""));
    rollout_status(cp, &ns, "deployment/web");

    set_image(cp, &ns, "deployment/web", &bad);
    eventually(
        "ErrImagePull or ImagePullBackOff",
        Duration::from_secs(30),
        || {
            let pods = new_pods(cp, &ns, &bad);
            (!pods.is_empty()
                && pods
                    .iter()
                    .all(|p| p.starts_with("Pending false ") && p.contains("ImagePull")))
            .then_some(())
        },
    );
    cp.kubectl_ok(&["rollout", "undo", "-n", &ns, "deployment/web"]);
    rollout_status(cp, &ns, "deployment/web");
    assert_eq!(
        jsonpath(
            cp,
            &ns,
            "deployment/web",
            "{.spec.template.spec.containers[0].image}"
        ),
        good
    );
}

#[test]
fn statefulset_and_daemonset_roll_out() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("sts-ds");
    let pod_template = |name: &str| {
        format!(
            "  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: example.com/{name}:v1
"
        )
    };
    let db = pod_template("db");
    let agent = pod_template("agent");
    cp.apply(
        &ns,
        &format!(
            "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
{db}---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
{agent}"
        ),
    );
    for object in ["statefulset/db", "daemonset/agent"] {
        rollout_status(cp, &ns, object);
        let name = object.split('/').nth(1).unwrap();
        set_image(cp, &ns, object, &format!("example.com/{name}:v2"));
        rollout_status(cp, &ns, object);
    }
    let sts = "{.status.updatedReplicas}/{.status.readyReplicas}/{.status.currentRevision}=={.status.updateRevision}";
    let revisions = jsonpath(cp, &ns, "statefulset/db", sts);
    let (counts, same) = revisions.split_at(4);
    assert_eq!(counts, "2/2/");
    let (current, update) = same.split_once("==").unwrap();
    assert_eq!(current, update);
    // One agent pod per fake node, all on the new image.
    let ds = "{.status.desiredNumberScheduled}/{.status.updatedNumberScheduled}/{.status.numberAvailable}";
    assert_eq!(jsonpath(cp, &ns, "daemonset/agent", ds), "3/3/3");
}

/// A private control plane: restarting the shared apiserver would break the tests running
/// beside this one.
#[test]
fn apiserver_restart_keeps_objects_and_controllers_recover() {
    let cp = ControlPlane::start();
    let ns = cp.namespace("restart");
    cp.apply(&ns, &deployment("web", "example.com/web:v1", 2, ""));
    rollout_status(&cp, &ns, "deployment/web");
    let uid = jsonpath(&cp, &ns, "deployment/web", "{.metadata.uid}");

    let started = Instant::now();
    cp.restart_apiserver();
    println!("apiserver restart: {:.1}s", started.elapsed().as_secs_f64());

    assert_eq!(jsonpath(&cp, &ns, "deployment/web", "{.metadata.uid}"), uid);
    // Controllers, scheduler and kwok reconnected: a new rollout completes.
    set_image(&cp, &ns, "deployment/web", "example.com/web:v2");
    rollout_status(&cp, &ns, "deployment/web");
}

/// kubectl with another kubeconfig (not the admin one).
fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(testbed::cluster::kubectl_path())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn service_account_token_is_a_restricted_identity() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("rbac");
    let token = cp.service_account_token(&ns, "deployer");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("deployer.kubeconfig");
    std::fs::write(&kubeconfig, cp.kubeconfig_for_token(&ns, &token)).unwrap();

    let whoami = kubectl_as(
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("system:serviceaccount:{ns}:deployer")
    );
    // The context's namespace applies; without a Role, nothing is allowed there.
    let denied = kubectl_as(&kubeconfig, &["get", "deployments"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains(&format!("\"system:serviceaccount:{ns}:deployer\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"{ns}\"")),
        "{stderr}"
    );

    cp.apply(
        &ns,
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: read-deployments
rules:
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: deployer-reads
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-deployments}
subjects:
- {kind: ServiceAccount, name: deployer}
",
    );
    eventually("the Role to apply", Duration::from_secs(10), || {
        kubectl_as(&kubeconfig, &["get", "deployments"])
            .status
            .success()
            .then_some(())
    });
    // Still nothing beyond it.
    assert!(!kubectl_as(&kubeconfig, &["get", "pods"]).status.success());
    // The admin kubeconfig is the same cluster, context "admin".
    let context = kubectl_as(cp.kubeconfig_path(), &["config", "current-context"]);
    assert_eq!(String::from_utf8_lossy(&context.stdout).trim(), "admin");
    assert!(cp.kubeconfig_yaml().contains(&cp.server()));
}

/// The figures for docs/testing.md; run alone (`cargo test --test controlplane figures --
/// --nocapture`) so that the start-up is not shared with other tests' CPU use.
#[test]
fn figures_startup_time_and_resident_memory() {
    let cp = ControlPlane::shared();
    let memory = cp.resident_memory();
    let names: Vec<&str> = memory.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok"
        ]
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let total: u64 = memory.iter().map(|(_, rss)| rss).sum();
    println!(
        "control plane ready in {:.1}s",
        cp.startup_time().as_secs_f64()
    );
    for (name, rss) in &memory {
        assert!(*rss > 0, "{name} is not running");
        println!("  {name:<24} {:>6.0} MiB", mib(*rss));
    }
    println!("  {:<24} {:>6.0} MiB", "total resident", mib(total));
}

/// Which processes have `needle` on their command line (every control-plane component has
/// its directory there).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

/// Teardown holds however the test binary ends: killed (SIGKILL, nothing of ours runs) or
/// after a failing test (the shared control plane's exit hook removes its directory too).
#[test]
fn control_plane_processes_die_with_the_test_binary() {
    for ending in ["sigkill", "panic"] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_control_plane",
                "--include-ignored",
                "--nocapture",
            ])
            .env("TESTBED_CHILD_ENDING", ending)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let dir = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("control plane in ").map(str::to_owned))
            .expect("the child did not start a control plane");
        assert!(
            processes_mentioning(&dir).len() >= 5,
            "no control plane in {dir}"
        );
        if ending == "sigkill" {
            child.kill().unwrap();
        } else {
            writeln!(child.stdin.take().unwrap()).unwrap();
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "{ending}: child exited with {status}");
        eventually(
            &format!("{ending}: processes to go"),
            Duration::from_secs(10),
            || processes_mentioning(&dir).is_empty().then_some(()),
        );
        if ending == "sigkill" {
            // Nothing could remove it: the logs stay for a post-mortem.
            std::fs::remove_dir_all(&dir).unwrap();
        } else {
            assert!(!Path::new(&dir).exists(), "{dir} left behind");
        }
    }
}

#[test]
#[ignore = "a helper, run in a child process by control_plane_processes_die_with_the_test_binary"]
fn child_control_plane() {
    let Ok(ending) = std::env::var("TESTBED_CHILD_ENDING") else {
        return; // run with --include-ignored, not as a child: nothing to do
    };
    let cp = ControlPlane::shared();
    println!("control plane in {}", cp.dir().display());
    // Until the parent has seen the processes (and then kills us, or lets us fail).
    std::io::stdin().read_line(&mut String::new()).unwrap();
    panic!("a failing test ({ending})");
}
