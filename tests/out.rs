//! `out` against a real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok
//! nodes): the built binary, JSON on stdin, as Concourse runs it.
//!
//! Images here never need to exist: kwok plays the kubelet, so pods become Ready without a pull,
//! and images whose name carries a failure marker fail the way real ones do (see
//! `testbed::cluster`). `params.digest` pins the version, so no registry is involved, except in
//! `a_put_without_a_get_deploys_the_newest_release_now` (a put that resolves the version itself);
//! the registry-to-cluster path through `get` is covered by tests/concourse.rs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::cluster::{self, ControlPlane, PodFailure};
use testbed::step::{self, Running, SIGINT, SIGTERM, StepResult};

const OUT: &str = env!("CARGO_BIN_EXE_out");

const REPO: &str = "registry.example.test/team/app";
/// A sidecar from another repository, as an extra container of [`deployment`].
const SIDECAR: &str =
    "        - name: proxy\n          image: registry.example.test/team/envoy:1.30\n";

fn cp() -> &'static ControlPlane {
    ControlPlane::shared()
}

/// A distinct, well-formed digest per test.
fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// Admin credentials, the namespace, and `deployment: web` (most tests roll that one).
fn source(namespace: &str) -> Value {
    json!({"repository": REPO, "kubeconfig": cp().kubeconfig_yaml(), "namespace": namespace, "deployment": "web"})
}

/// `source` rolling `workloads` instead of `deployment: web`.
fn source_for(namespace: &str, workloads: &[&str]) -> Value {
    let mut source = source(namespace);
    source.as_object_mut().unwrap().remove("deployment");
    source["workloads"] = json!(workloads);
    source
}

fn out(request: &Value) -> StepResult {
    let dir = tempfile::tempdir().unwrap();
    step::run(OUT, Some(dir.path()), request, &[])
}

/// A Deployment of `replicas` pods whose `app` container runs `image`, plus `extra` containers
/// (YAML list items, already indented) and extra spec lines.
fn deployment(
    name: &str,
    replicas: u32,
    image: &str,
    extra_containers: &str,
    extra_spec: &str,
) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{team: platform}}
  annotations: {{owner: someone-else}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
{extra_spec}  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: {image}
{extra_containers}"#
    )
}

/// A fresh namespace holding deployment/web (see [`deployment`]), rolled out; returns the namespace.
fn web(
    prefix: &str,
    replicas: u32,
    image: &str,
    extra_containers: &str,
    extra_spec: &str,
) -> String {
    let ns = cp().namespace(prefix);
    cp().apply(
        &ns,
        &deployment("web", replicas, image, extra_containers, extra_spec),
    );
    rollout_status(&ns, "deploy/web");
    ns
}

/// The [`SIDECAR`] still runs its own image.
fn assert_sidecar_untouched(namespace: &str) {
    let proxy = r#"{.spec.template.spec.containers[?(@.name=="proxy")].image}"#;
    assert_eq!(
        get(namespace, "deploy/web", proxy),
        "registry.example.test/team/envoy:1.30"
    );
}

fn get(namespace: &str, object: &str, jsonpath: &str) -> String {
    cp().kubectl_ok(&[
        "-n",
        namespace,
        "get",
        object,
        "-o",
        &format!("jsonpath={jsonpath}"),
    ])
}

fn app_image(namespace: &str, object: &str) -> String {
    get(
        namespace,
        object,
        r#"{.spec.template.spec.containers[?(@.name=="app")].image}"#,
    )
}

fn rollout_status(namespace: &str, object: &str) {
    cp().rollout_status(namespace, object);
}

#[test]
fn a_put_without_a_get_deploys_the_newest_release_now() {
    use testbed::registry::{Auth, ImageSpec, Layout, Registry};
    let registry = Registry::start(Auth::Open);
    let base = registry.push(&Layout::image(&ImageSpec::new("r1")), "team/app", "1.0.0");
    let newest = registry.tag("team/app", &base, "1.1.0", true);
    registry.tag("team/app", &base, "2.0.0-rc.1", true);
    let repository = registry.repository("team/app");
    let ns = web("out-release", 1, &format!("{repository}:1.0.0"), "", "");
    let mut source = source(&ns);
    source["repository"] = json!(repository);
    source["insecure"] = json!(true);
    source["semver_constraint"] = json!("< 2");
    let result = out(&json!({"source": source, "params": {"timeout": "2m"}}));
    let json = result.json();
    assert_eq!(json["version"], json!({"digest": newest, "tag": "1.1.0"}));
    let image = format!("{repository}@{newest}");
    assert_eq!(cp().template_image(&ns, "deploy/web"), image);
    let cause = cp().kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deploy/web",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/change-cause}",
    ]);
    assert_eq!(cause, format!("image-rollout {image} (1.1.0)"));
}

#[test]
fn put_rolls_the_deployment_to_the_digest_and_reports_it() {
    let ns = web("out-ok", 3, &format!("{REPO}:v1"), "", "");

    let d = digest(1);
    let dir = tempfile::tempdir().unwrap();
    // The environment Concourse gives a put step.
    let build = [
        ("BUILD_TEAM_NAME", "main"),
        ("BUILD_PIPELINE_NAME", "family-assistant"),
        ("BUILD_JOB_NAME", "deploy"),
        ("BUILD_NAME", "42"),
        ("ATC_EXTERNAL_URL", "https://ci.example.test/"),
    ];
    let request = json!({"source": source(&ns), "params": {"digest": d, "timeout": "2m"}});
    let result = step::run(OUT, Some(dir.path()), &request, &build);
    let json = result.json();
    assert_eq!(json["version"], json!({"digest": d}));
    let metadata: Vec<(String, String)> = json["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let meta = |k: &str| {
        metadata
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(meta("namespace"), ns);
    assert_eq!(meta("workloads"), "deployment/web");
    assert_eq!(meta("image"), format!("{REPO}@{d}"));
    assert!(
        meta("previous_image").contains(&format!("app={REPO}:v1")),
        "{metadata:?}"
    );
    assert_eq!(meta("revision"), "2");
    assert_eq!(meta("rolled_back"), "false");

    // The rollout really finished: every replica runs the new template and is available.
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
    assert_eq!(
        get(
            &ns,
            "deploy/web",
            "{.status.updatedReplicas}/{.status.availableReplicas}/{.status.replicas}"
        ),
        "3/3/3"
    );
    // Progress was shown as counts changed.
    assert!(result.stderr.contains("/3 updated"), "{}", result.stderr);
    assert!(
        result.stderr.contains("rollout complete"),
        "{}",
        result.stderr
    );
    // Only the image changed; the change is explained in the rollout history.
    assert_eq!(
        get(
            &ns,
            "deploy/web",
            "{.spec.replicas} {.metadata.labels.team} {.metadata.annotations.owner}"
        ),
        "3 platform someone-else"
    );
    let history = cp().kubectl_ok(&["-n", &ns, "rollout", "history", "deploy/web"]);
    let cause = format!(
        "image-rollout {REPO}@{d} by family-assistant/deploy #42 https://ci.example.test/teams/main/pipelines/family-assistant/jobs/deploy/builds/42"
    );
    assert!(history.contains(&cause), "{history}");
}

#[test]
fn without_wait_the_put_patches_and_returns() {
    // Pods of this build never become ready: only a put that does not wait can succeed.
    let d = digest(17);
    cp().fail_images(&format!("{REPO}@{d}"), PodFailure::NeverReady);
    let ns = web("out-nowait", 1, &format!("{REPO}:v1"), "", "");
    let result = out(&json!({"source": source(&ns), "params": {"digest": d, "wait": false}}));
    assert_eq!(result.json()["version"]["digest"], d);
    assert!(
        !result.stderr.contains("rollout complete"),
        "{}",
        result.stderr
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

#[test]
fn put_of_the_current_digest_starts_no_rollout() {
    let d = digest(2);
    let ns = web("out-same", 2, &format!("{REPO}@{d}"), "", "");
    let generation = get(&ns, "deploy/web", "{.metadata.generation}");

    let result = out(&json!({"source": source(&ns), "params": {"digest": d}}));
    assert_eq!(result.json()["version"]["digest"], d);
    assert!(result.stderr.contains("already runs"), "{}", result.stderr);
    assert_eq!(get(&ns, "deploy/web", "{.metadata.generation}"), generation);
}

#[test]
fn put_updates_only_containers_of_the_source_repository() {
    let ns = web("out-sidecar", 1, &format!("{REPO}:v1"), SIDECAR, "");

    let d = digest(3);
    out(&json!({"source": source(&ns), "params": {"digest": d, "timeout": "2m"}})).json();
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
    assert_sidecar_untouched(&ns);

    // A container name that does not exist is refused before anything changes, listing the real ones.
    let result =
        out(&json!({"source": source(&ns), "params": {"digest": digest(4), "container": "api"}}));
    let line = result.error_line();
    assert!(
        line.contains("no container named `api`") && line.contains("app, proxy"),
        "{line}"
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

/// A put of a bad build of the app — same repository, a digest whose pods fail as `failure`
/// says — fails with the pod's own reason (not the 5-minute timeout), and the Deployment is back
/// on its old template.
fn broken_build_fails_fast_and_rolls_back(n: u8, failure: PodFailure, expected: &[&str]) {
    let bad = digest(n);
    cp().fail_images(&format!("{REPO}@{bad}"), failure);
    let ns = web("out-broken", 2, &format!("{REPO}:v1"), "", "");
    let line = out(&json!({"source": source(&ns), "params": {"digest": bad, "timeout": "5m"}}))
        .error_line();
    assert!(
        line.contains("deployment/web did not roll out: pod web-"),
        "{line}"
    );
    for text in expected {
        assert!(line.contains(text), "{text:?} missing in {line}");
    }
    assert!(!line.contains("timed out"), "{line}");
    assert!(
        line.contains(&format!(
            "rolled back deployment/web to deployment/web app={REPO}:v1"
        )),
        "{line}"
    );
    // Back on the old template, healthy, replicas untouched.
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
    rollout_status(&ns, "deploy/web");
    assert_eq!(get(&ns, "deploy/web", "{.spec.replicas}"), "2");
}

#[test]
fn a_crash_looping_build_fails_with_its_last_words_and_rolls_back() {
    broken_build_fails_fast_and_rolls_back(
        40,
        PodFailure::CrashLoop,
        &[
            "container app: CrashLoopBackOff: exit code 1",
            cluster::CRASH_MESSAGE,
        ],
    );
}

#[test]
fn a_build_that_cannot_be_pulled_fails_and_rolls_back() {
    broken_build_fails_fast_and_rolls_back(
        41,
        PodFailure::ImagePull,
        &["container app: ImagePullBackOff"],
    );
}

#[test]
fn container_selects_the_app_when_its_image_is_from_elsewhere() {
    // The app runs a mirror's image; `container` says which container this resource owns.
    let ns = web(
        "out-container",
        1,
        "mirror.example.test/app:v1",
        SIDECAR,
        "",
    );
    let d = digest(42);
    let mut source = source(&ns);
    source["container"] = json!("app");
    out(&json!({"source": source, "params": {"digest": d, "timeout": "2m"}})).json();
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
    assert_sidecar_untouched(&ns);
}

#[test]
fn a_rollout_that_does_not_finish_in_time_times_out_and_rolls_back() {
    // Pods of this build run but never become ready (a failing readiness probe): nothing to fail
    // fast on, only the timeout ends it.
    cp().fail_images(&format!("{REPO}@{}", digest(6)), PodFailure::NeverReady);
    let ns = web("out-timeout", 2, &format!("{REPO}:v1"), "", "");
    let result =
        out(&json!({"source": source(&ns), "params": {"digest": digest(6), "timeout": "3s"}}));
    let line = result.error_line();
    assert!(line.contains("timed out after 3s"), "{line}");
    assert!(line.contains("rolled back deployment/web"), "{line}");
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
}

#[test]
fn rollback_can_be_turned_off() {
    let d = digest(7);
    cp().fail_images(&format!("{REPO}@{d}"), PodFailure::NeverReady);
    let ns = web("out-norollback", 1, &format!("{REPO}:v1"), "", "");
    let result = out(
        &json!({"source": source(&ns), "params": {"digest": d, "timeout": "2s", "rollback_on_failure": false}}),
    );
    assert!(
        result
            .error_line()
            .contains("left as is (rollback_on_failure: false)")
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

#[test]
fn statefulset_and_daemonset_roll_out() {
    let ns = cp().namespace("out-kinds");
    cp().apply(
        &ns,
        &format!(
            r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  replicas: 2
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: app, image: "{REPO}:v1"}}]}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec: {{containers: [{{name: app, image: "{REPO}:v1"}}]}}
"#
        ),
    );
    rollout_status(&ns, "statefulset/db");
    rollout_status(&ns, "daemonset/agent");
    let d = digest(8);
    let source = source_for(&ns, &["statefulset/db", "daemonset/agent"]);
    let result = out(&json!({"source": source, "params": {"digest": d, "timeout": "3m"}}));
    result.json();
    for object in ["statefulset/db", "daemonset/agent"] {
        assert_eq!(app_image(&ns, object), format!("{REPO}@{d}"));
    }
    // kubectl agrees the rollouts are complete, and the pods run the digest.
    rollout_status(&ns, "statefulset/db");
    let images = cp().kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "pods",
        "-l",
        "app=db",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        images.split(' ').all(|i| i == format!("{REPO}@{d}")),
        "{images}"
    );
}

#[test]
fn one_failing_workload_rolls_back_all_that_changed() {
    let ns = cp().namespace("out-multi");
    let nodes = cp()
        .kubectl_ok(&["get", "nodes", "-o", "name"])
        .lines()
        .count() as u32;
    // A slow rollout beside the failing one: each new pod takes 40 s to count as available, so
    // web alone would take 2 minutes.
    let slow = "  minReadySeconds: 40\n";
    cp().apply(&ns, &deployment("web", 3, &format!("{REPO}:v1"), "", slow));
    // One pod per node on every node and no room to surge: the new pod can never be scheduled.
    let affinity = "      affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: worker}}, topologyKey: kubernetes.io/hostname}]}}\n";
    let worker = deployment("worker", nodes, &format!("{REPO}:v1"), "", "").replace(
        "      containers:\n",
        &format!("{affinity}      containers:\n"),
    );
    cp().apply(&ns, &worker);
    rollout_status(&ns, "deploy/web");
    rollout_status(&ns, "deploy/worker");

    let source = source_for(&ns, &["deployment/web", "deployment/worker"]);
    let started = Instant::now();
    let result = out(&json!({"source": source, "params": {"digest": digest(9), "timeout": "5m"}}));
    let line = result.error_line();
    assert!(
        line.contains("deployment/worker did not roll out") && line.contains("Unschedulable"),
        "{line}"
    );
    // The failure ended web's wait too: the put is rolled back anyway.
    assert!(
        line.contains("deployment/web: stopped as deployment/worker failed while waiting ("),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(90), "{line}");
    assert!(
        line.contains("rolled back deployment/web")
            && line.contains("rolled back deployment/worker"),
        "{line}"
    );
    for object in ["deploy/web", "deploy/worker"] {
        assert_eq!(app_image(&ns, object), format!("{REPO}:v1"));
        rollout_status(&ns, object);
    }
}

#[test]
fn dry_run_changes_nothing() {
    let ns = web("out-dry", 1, &format!("{REPO}:v1"), "", "");
    let generation = get(&ns, "deploy/web", "{.metadata.generation}");
    let result =
        out(&json!({"source": source(&ns), "params": {"digest": digest(10), "dry_run": true}}));
    result.json();
    assert!(result.stderr.contains("dry run"), "{}", result.stderr);
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
    assert_eq!(get(&ns, "deploy/web", "{.metadata.generation}"), generation);
}

#[test]
fn the_wait_survives_an_api_server_restart_and_watch_expiry() {
    // A private control plane: restarting the shared one would disturb the other tests.
    let cp = ControlPlane::start();
    let ns = cp.namespace("out-restart");
    cp.apply(
        &ns,
        &deployment(
            "web",
            3,
            &format!("{REPO}:v1"),
            "",
            "  minReadySeconds: 4\n",
        ),
    );
    cp.rollout_status(&ns, "deploy/web");
    let d = digest(11);
    let dir = tempfile::tempdir().unwrap();
    let source = json!({"repository": REPO, "kubeconfig": cp.kubeconfig_yaml(), "namespace": ns, "deployment": "web"});
    let request = json!({"source": source, "params": {"digest": d, "timeout": "4m"}});
    let mut running = Running::start(OUT, Some(dir.path()), &request, &[]);
    // Restart once the wait is under way (the first progress line), then let it finish.
    running.wait_for_line("updated");
    cp.restart_apiserver();
    let result = running.finish();
    result.json();
    let rest = &result.stderr;
    // The watches broke with the apiserver, and resuming them from their last resourceVersion
    // met 410 Gone ("too old resource version … Expired": the restarted apiserver's watch cache
    // starts past it, as after a compaction); the wait re-listed and carried on.
    assert!(rest.contains("watch interrupted"), "{rest}");
    assert!(rest.contains("too old resource version"), "{rest}");
    let state = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deploy/web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} {.status.updatedReplicas}/{.status.availableReplicas}",
    ]);
    assert_eq!(state, format!("{REPO}@{d} 3/3"));
}

#[test]
fn authenticates_with_a_kubeconfig_context() {
    let ns = web("out-context", 1, &format!("{REPO}:v1"), "", "");
    // A kubeconfig whose current context points nowhere: only `context: admin` can work.
    let mut kubeconfig: Value = serde_saphyr::from_str(&cp().kubeconfig_yaml()).unwrap();
    let admin = kubeconfig["contexts"][0].clone();
    let mut broken = admin.clone();
    broken["name"] = json!("broken");
    broken["context"]["cluster"] = json!("nowhere");
    kubeconfig["contexts"] = json!([admin, broken]);
    kubeconfig["current-context"] = json!("broken");
    let yaml = serde_json::to_string(&kubeconfig).unwrap(); // JSON is YAML
    let d = digest(12);
    let source = json!({"repository": REPO, "kubeconfig": yaml, "context": "admin", "namespace": ns, "deployment": "web"});
    out(&json!({"source": source, "params": {"digest": d, "timeout": "2m"}})).json();
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

/// A kubeconfig copied from the admin's with only the context switched to a restricted token (what
/// pipeline/rbac-readonly.yaml's recipe once made) is refused before anything is read or patched:
/// the line names the admin user and what it holds, never a value. `allow_unused_credentials`
/// passes it on purpose.
#[test]
fn a_kubeconfig_with_credentials_its_context_does_not_use_is_refused() {
    let ns = web("out-unused-credentials", 1, &format!("{REPO}:v1"), "", "");
    let token = shipped_rbac_token(&ns, None);
    let mut kubeconfig: Value = serde_saphyr::from_str(&cp().kubeconfig_yaml()).unwrap();
    let restricted: Value =
        serde_saphyr::from_str(&cp().kubeconfig_for_token(&ns, &token)).unwrap();
    let admin_key = kubeconfig["users"][0]["user"]["client-key-data"]
        .as_str()
        .expect("the admin kubeconfig holds a client key")
        .to_string();
    for list in ["users", "contexts"] {
        let entry = restricted[list][0].clone();
        kubeconfig[list].as_array_mut().unwrap().push(entry);
    }
    kubeconfig["current-context"] = json!("token");
    let yaml = serde_json::to_string(&kubeconfig).unwrap(); // JSON is YAML
    let mut source =
        json!({"repository": REPO, "kubeconfig": yaml, "namespace": ns, "deployment": "web"});
    let d = digest(13);
    let request = json!({"source": source, "params": {"digest": d, "timeout": "2m"}});

    let result = out(&request);
    result.assert_never_prints(&admin_key);
    result.assert_never_prints(&token);
    let line = result.error_line();
    assert!(
        line.contains("source.kubeconfig: holds credentials this put does not use: user `admin` (client-certificate-data, client-key-data)")
            && line.contains("source.allow_unused_credentials"),
        "{line}"
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));

    source["allow_unused_credentials"] = json!(true);
    out(&json!({"source": source, "params": {"digest": d, "timeout": "2m"}})).json();
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

/// The recipe in pipeline/rbac-readonly.yaml, run line by line as a user would (only the namespace
/// is this test's), makes a kubeconfig that grants nothing the read-only Role does not: for every
/// user in the file the API server answers no to patch, update and delete of the Deployment.
#[test]
fn the_shipped_read_only_kubeconfig_recipe_grants_no_write() {
    let ns = web("out-recipe", 1, &format!("{REPO}:v1"), "", "");
    let root = env!("CARGO_MANIFEST_DIR");
    let rbac = std::fs::read_to_string(format!("{root}/pipeline/rbac-readonly.yaml")).unwrap();
    let recipe: Vec<String> = rbac
        .lines()
        .skip_while(|l| !l.starts_with("#   kubectl apply"))
        .take_while(|l| !l.starts_with("#   # -> "))
        .map(|l| l.trim_start_matches("#   ").replace("ml-bot", &ns))
        .collect();
    assert!(recipe.len() > 5, "the recipe moved: {recipe:?}");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(format!("{root}/pipeline"), dir.path().join("pipeline")).unwrap();
    let path = format!(
        "{}:{}",
        testbed::tools_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &recipe.join("\n")])
        .current_dir(dir.path())
        // kubectl's discovery cache goes to $HOME/.kube: the test's directory, not the host's.
        .env("HOME", dir.path())
        .env("PATH", path)
        .env("KUBECONFIG", cp().kubeconfig_path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        !dir.path().join("ca.crt").exists(),
        "the recipe leaves ca.crt"
    );

    let file = dir.path().join("readonly.kubeconfig");
    let file = file.to_str().unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(testbed::tools_bin().join("kubectl"))
            .args(["--kubeconfig", file, "--cache-dir"])
            .arg(dir.path().join(".kube/cache"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let users = kubectl(&["config", "view", "-o", "jsonpath={.users[*].name}"]);
    let users: Vec<&str> = users.split_whitespace().collect();
    assert_eq!(users, ["image-rollout-readonly"]);
    let can = |user: &str, verb: &str| {
        kubectl(&[
            "--user",
            user,
            "-n",
            &ns,
            "auth",
            "can-i",
            verb,
            "deployments/web",
        ])
    };
    for user in &users {
        for verb in ["patch", "update", "delete"] {
            assert_eq!(can(user, verb), "no", "{user} may {verb} deployments/web");
        }
        assert_eq!(can(user, "watch"), "yes", "{user} cannot follow a rollout");
    }
}

/// Applies pipeline/rbac.yaml (optionally with one verb removed) and returns the token of its
/// ServiceAccount.
fn shipped_rbac_token(ns: &str, drop_verb: Option<(&str, &str)>) -> String {
    let mut rbac =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline/rbac.yaml"))
            .unwrap();
    if let Some((from, to)) = drop_verb {
        assert!(rbac.contains(from), "rbac.yaml changed: {from:?} not found");
        rbac = rbac.replace(from, to);
    }
    cp().apply(ns, &rbac);
    cp().service_account_token(ns, "image-rollout")
}

#[test]
fn the_shipped_role_is_enough_with_server_token_and_ca() {
    let ns = web("out-rbac", 1, &format!("{REPO}:v1"), "", "");
    let token = shipped_rbac_token(&ns, None);
    let d = digest(13);
    let source = json!({
        "repository": REPO, "namespace": ns, "deployment": "web",
        "server": cp().server(), "token": token, "certificate_authority": cp().ca_pem(),
    });
    let result = out(&json!({"source": source, "params": {"digest": d, "timeout": "2m"}}));
    result.json();
    result.assert_never_prints(&token);
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
}

/// The shipped Role minus one verb, as a user who trimmed it would have it.
const WITHOUT_PATCH: (&str, &str) = (
    r#"verbs: ["get", "list", "watch", "patch"]"#,
    r#"verbs: ["get", "list", "patch"]"#,
);

#[test]
fn missing_permissions_are_named_up_front_and_nothing_changes() {
    let cases = [
        (
            (
                r#"verbs: ["get", "list", "watch", "patch"]"#,
                r#"verbs: ["get", "list", "watch"]"#,
            ),
            "patch deployments.apps/web",
        ),
        (WITHOUT_PATCH, "watch deployments.apps/web"),
        (
            (r#"verbs: ["list", "watch"]"#, r#"verbs: ["list"]"#),
            "watch pods",
        ),
    ];
    for (drop_verb, missing) in cases {
        let ns = web("out-rbac-verb", 1, &format!("{REPO}:v1"), "", "");
        let generation = get(&ns, "deploy/web", "{.metadata.generation}");
        let token = shipped_rbac_token(&ns, Some(drop_verb));
        let source = json!({
            "repository": REPO, "namespace": ns, "deployment": "web",
            "server": cp().server(), "token": token, "certificate_authority": cp().ca_pem(),
        });
        let started = Instant::now();
        let result = out(&json!({"source": source, "params": {"digest": digest(14)}}));
        let line = result.error_line();
        assert!(
            line.contains(&format!(
                "system:serviceaccount:{ns}:image-rollout may not {missing} in namespace {ns}; nothing was changed"
            )) && line.contains("pipeline/rbac.yaml"),
            "{line}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{line}");
        result.assert_never_prints(&token);
        assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
        assert_eq!(get(&ns, "deploy/web", "{.metadata.generation}"), generation);
    }
}

/// Where the identity may not even review its own permissions (the cluster removed the
/// `system:basic-user` binding), a refusal during the put is fatal at once — never
/// "reconnecting" until the timeout — and the patch is undone, saying what could not be
/// verified.
#[test]
fn without_access_reviews_a_refused_watch_fails_at_once_and_rolls_back() {
    // A private control plane: removing the binding would change what the other tests see.
    let cp = ControlPlane::start();
    cp.kubectl_ok(&["delete", "clusterrolebinding", "system:basic-user"]);
    let bad = digest(43);
    cp.fail_images(&format!("{REPO}@{bad}"), PodFailure::CrashLoop);
    let cases = [
        (WITHOUT_PATCH, r#"cannot watch resource "deployments""#),
        (
            (r#"verbs: ["list", "watch"]"#, r#"verbs: ["list"]"#),
            r#"cannot watch resource "pods""#,
        ),
    ];
    for ((from, to), refusal) in cases {
        let ns = cp.namespace("out-noreview");
        cp.apply(&ns, &deployment("web", 1, &format!("{REPO}:v1"), "", ""));
        cp.rollout_status(&ns, "deploy/web");
        let rbac =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline/rbac.yaml"))
                .unwrap();
        cp.apply(&ns, &rbac.replace(from, to));
        let token = cp.service_account_token(&ns, "image-rollout");
        let source = json!({
            "repository": REPO, "namespace": ns, "deployment": "web",
            "server": cp.server(), "token": token, "certificate_authority": cp.ca_pem(),
        });
        let started = Instant::now();
        let result = out(&json!({"source": source, "params": {"digest": bad, "timeout": "5m"}}));
        let line = result.error_line();
        let elapsed = started.elapsed();
        assert!(
            result
                .stderr
                .contains("cannot review this identity's permissions up front"),
            "{}",
            result.stderr
        );
        assert!(!result.stderr.contains("reconnecting"), "{}", result.stderr);
        assert!(
            line.contains("deployment/web: cannot follow the rollout: ")
                && line.contains(refusal)
                && line.contains("HTTP 403")
                && line.contains("pipeline/rbac.yaml"),
            "{line}"
        );
        // The template is restored, and the message says so rather than "ROLLBACK FAILED".
        assert!(
            line.contains(&format!(
                "restored deployment/web app={REPO}:v1, but could not verify its rollout"
            )) && !line.contains("ROLLBACK FAILED"),
            "{line}"
        );
        assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {line}");
        assert_eq!(cp.template_image(&ns, "deploy/web"), format!("{REPO}:v1"));
        result.assert_never_prints(&token);
    }
}

/// Starts a put of build `n` of the app, whose pods fail as `failure` says, to deployment/web
/// (2 replicas of [`REPO`]`:v1` plus `extra_containers`); returns it once it is waiting.
fn put_in_progress(
    prefix: &str,
    n: u8,
    failure: PodFailure,
    extra_containers: &str,
    params: Value,
) -> (String, Running, tempfile::TempDir) {
    let d = digest(n);
    cp().fail_images(&format!("{REPO}@{d}"), failure);
    let ns = web(prefix, 2, &format!("{REPO}:v1"), extra_containers, "");
    let mut params = params;
    params["digest"] = json!(d);
    params["timeout"] = json!("5m");
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::start(
        OUT,
        Some(dir.path()),
        &json!({"source": source(&ns), "params": params}),
        &[],
    );
    running.wait_for_line(" updated, ");
    (ns, running, dir)
}

#[test]
fn sigterm_mid_rollout_restores_the_patch_and_exits_at_once() {
    let (ns, running, _dir) =
        put_in_progress("out-sigterm", 44, PodFailure::NeverReady, "", json!({}));
    assert_eq!(
        app_image(&ns, "deploy/web"),
        format!("{REPO}@{}", digest(44))
    );
    let (result, elapsed) = running.stop(SIGTERM);
    let line = result.error_line();
    println!("SIGTERM to exit: {elapsed:?}");
    // Concourse sends SIGKILL 10 s after SIGTERM; the restore must be done well before.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {line}");
    assert!(
        line.contains("deployment/web: aborted by SIGTERM while waiting (")
            && line.contains(&format!(
                "restored deployment/web app={REPO}:v1 (its rollout not awaited: aborted by SIGTERM)"
            )),
        "{line}"
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
    rollout_status(&ns, "deploy/web");
}

#[test]
fn sigint_without_rollback_leaves_the_patch_and_says_so() {
    let (ns, running, _dir) = put_in_progress(
        "out-sigint",
        45,
        PodFailure::NeverReady,
        "",
        json!({"rollback_on_failure": false}),
    );
    let (result, elapsed) = running.stop(SIGINT);
    let line = result.error_line();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {line}");
    assert!(
        line.contains("aborted by SIGINT")
            && line.contains("left as is (rollback_on_failure: false): deployment/web"),
        "{line}"
    );
    assert_eq!(
        app_image(&ns, "deploy/web"),
        format!("{REPO}@{}", digest(45))
    );
}

/// A put of a crashing build, and while it waits someone else sets the image (another
/// pipeline, a human with kubectl): that rollout is not ours, so the put fails saying who won,
/// and its rollback leaves their image alone.
#[test]
fn a_competing_image_change_fails_the_put_and_is_never_rolled_back() {
    let (ns, running, _dir) =
        put_in_progress("out-compete", 46, PodFailure::CrashLoop, "", json!({}));
    let theirs = format!("{REPO}:v3");
    cp().kubectl_ok(&[
        "-n",
        &ns,
        "set",
        "image",
        "deploy/web",
        &format!("app={theirs}"),
    ]);
    let line = running.finish().error_line();
    assert!(
        line.contains(&format!(
            "deployment/web: changed by someone else while waiting: the template now runs app={theirs}"
        )),
        "{line}"
    );
    assert!(
        line.contains("left deployment/web as is: someone else changed its image")
            && !line.contains("rolled back"),
        "{line}"
    );
    assert_eq!(app_image(&ns, "deploy/web"), theirs);
    rollout_status(&ns, "deploy/web");
}

/// Someone changes another part of the template (an env var) while a failing put waits: the
/// rollback puts back only the image this put changed, and keeps their change.
#[test]
fn the_rollback_keeps_someone_elses_change_to_the_template() {
    let (ns, running, _dir) =
        put_in_progress("out-keep", 47, PodFailure::CrashLoop, SIDECAR, json!({}));
    cp().kubectl_ok(&[
        "-n",
        &ns,
        "set",
        "env",
        "deploy/web",
        "-c",
        "app",
        "COLOUR=blue",
    ]);
    let line = running.finish().error_line();
    assert!(line.contains("CrashLoopBackOff"), "{line}");
    assert!(
        line.contains(&format!(
            "rolled back deployment/web to deployment/web app={REPO}:v1"
        )),
        "{line}"
    );
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}:v1"));
    assert_eq!(
        get(
            &ns,
            "deploy/web",
            r#"{.spec.template.spec.containers[?(@.name=="app")].env[0].value}"#
        ),
        "blue"
    );
    assert_sidecar_untouched(&ns);
}

#[test]
fn a_wrong_token_is_refused_without_printing_it() {
    let token = "not-a-real-token-3f9a1c";
    let source = json!({
        "repository": REPO, "namespace": "default", "deployment": "web",
        "server": cp().server(), "token": token, "certificate_authority": cp().ca_pem(),
    });
    let result = out(&json!({"source": source, "params": {"digest": digest(15)}}));
    let line = result.error_line();
    assert!(line.contains("401"), "{line}");
    result.assert_never_prints(token);
}

#[test]
fn authenticates_in_cluster_from_the_service_account_files() {
    // kube reads the service account from its fixed path, as in a real pod; the step gets a
    // private view of that path (see `run_with_service_account`), never the host's.
    let host_secrets = std::path::Path::new("/run/secrets");
    let existed = host_secrets.exists();
    let ns = web("out-incluster", 1, &format!("{REPO}:v1"), "", "");
    let token = shipped_rbac_token(&ns, None);
    let server = cp().server();
    let port = server.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = digest(16);
    let ca = cp().ca_pem();
    let result = step::run_with_service_account(
        OUT,
        dir.path(),
        // No namespace and no credentials: both come from the pod's service account.
        &json!({"source": {"repository": REPO, "deployment": "web"}, "params": {"digest": d, "timeout": "2m"}}),
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", &port),
        ],
        &[("token", &token), ("ca.crt", &ca), ("namespace", &ns)],
    );
    result.json();
    result.assert_never_prints(&token);
    assert_eq!(app_image(&ns, "deploy/web"), format!("{REPO}@{d}"));
    // Nothing of it reached the host.
    assert_eq!(host_secrets.exists(), existed);
    let host_token = host_secrets.join("kubernetes.io/serviceaccount/token");
    assert_ne!(std::fs::read_to_string(host_token).ok(), Some(token));
}

#[test]
fn bad_params_fail_with_one_line_naming_the_key() {
    let ns = cp().namespace("out-bad");
    let base = source_for(&ns, &[]);
    let base = json!({"repository": REPO, "kubeconfig": base["kubeconfig"], "namespace": ns});
    let not_found = format!("deployment/absent not found in namespace {ns}");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"source": base, "params": {"digest": digest(1), "deployment": "web", "timout": "1m"}}),
            "params.timout: unknown field `timout`, expected one of `image`, `digest`, `timeout`",
        ),
        (
            json!({"source": base, "params": {"digest": "sha256:xyz", "deployment": "web"}}),
            "params.digest: `sha256:xyz` is not a digest",
        ),
        (
            json!({"source": base, "params": {"digest": digest(1), "deployment": "web", "timeout": "soon"}}),
            "params.timeout: `soon` is not a duration",
        ),
        (
            json!({"source": base, "params": {"digest": digest(1), "deployment": "web", "image": "img"}}),
            "params.digest: set either params.image or params.digest",
        ),
        (
            json!({"source": base, "params": {"digest": digest(1)}}),
            "nothing to roll",
        ),
        (
            json!({"source": base, "params": {"digest": digest(1), "deployment": "absent"}}),
            &not_found,
        ),
        (
            json!({"source": base, "params": {"deployment": "web", "image": "missing-dir"}}),
            "missing-dir/repository: cannot read",
        ),
        (
            json!({"source": base, "params": {"digest": digest(1), "workloads": ["job/x"]}}),
            "`job/x` is not a workload",
        ),
    ];
    for (request, expected) in cases {
        let line = out(&request).error_line();
        assert!(line.contains(expected), "expected {expected:?} in {line:?}");
    }
}

#[test]
fn secrets_in_a_kubeconfig_never_reach_the_output() {
    // A kubeconfig with an embedded token pointing at a closed port: the error names the server
    // and stays silent about the credentials.
    let secret = "kubeconfig-token-7d2e9b";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:1'}}}}]\nusers: [{{name: u, user: {{token: {secret}}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
    );
    let result = out(
        &json!({"source": {"repository": REPO, "kubeconfig": kubeconfig, "deployment": "web"}, "params": {"digest": digest(1)}}),
    );
    let line = result.error_line();
    assert!(line.contains("127.0.0.1:1"), "{line}");
    result.assert_never_prints(secret);
    // And one that is not YAML at all is refused without echoing it.
    let garbage = format!("{{{{ not yaml {secret}");
    let result = out(
        &json!({"source": {"repository": REPO, "kubeconfig": garbage, "deployment": "web"}, "params": {"digest": digest(1)}}),
    );
    assert!(
        result
            .error_line()
            .contains("source.kubeconfig: is not a kubeconfig")
    );
    result.assert_never_prints(secret);
}

#[test]
fn a_kubeconfig_certificate_that_is_not_one_fails_at_once_naming_it() {
    // Checked before the cluster or the registry is asked (neither exists here).
    use base64::Engine as _;
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = |ca: &str, client: &str| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:1', certificate-authority-data: '{ca}'}}}}]\nusers: [{{name: u, user: {{client-certificate-data: '{client}', token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        )
    };
    let ca = cluster::pki::Pki::new().ca_pem();
    for (yaml, expected) in [
        (
            kubeconfig(&encode("not a pem"), &encode(&ca)),
            "cluster `c`: certificate-authority-data is not a PEM certificate",
        ),
        (
            kubeconfig(
                &encode(&ca),
                &encode("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
            ),
            "user `u`: client-certificate-data holds a private key",
        ),
        (
            kubeconfig("%%%", &encode(&ca)),
            "certificate-authority-data is not base64",
        ),
    ] {
        let line =
            out(&json!({"source": {"repository": REPO, "kubeconfig": yaml, "deployment": "web"}}))
                .error_line();
        assert!(
            line.contains("source.kubeconfig: ") && line.contains(expected),
            "{line}"
        );
    }
    let line = out(&json!({"source": {"repository": REPO, "server": "https://127.0.0.1:1", "token": "t", "certificate_authority": "not a pem", "deployment": "web"}})).error_line();
    assert!(
        line.contains("source.certificate_authority: is not a PEM certificate"),
        "{line}"
    );
}

/// `restore_timeout` bounds the wait after a GitOps revert; a cluster-mode put refuses it rather
/// than ignoring it, before it connects anywhere.
#[test]
fn restore_timeout_is_a_gitops_key() {
    let closed = testbed::registry::free_port();
    let source = json!({"repository": REPO, "server": format!("https://{closed}"), "token": "t", "deployment": "web"});
    let result =
        out(&json!({"source": source, "params": {"digest": digest(14), "restore_timeout": "1m"}}));
    let line = result.error_line();
    assert!(
        line.contains("params.restore_timeout: only applies with source.git"),
        "{line}"
    );
}
