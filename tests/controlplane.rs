//! The test control plane (testbed::cluster) behaves like a real cluster, as seen by the real
//! kubectl: workloads roll out, failing images fail the way kubelets report it, and objects
//! survive an apiserver restart.

use std::time::{Duration, Instant};

use testbed::cluster::ControlPlane;

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
    cp.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        &ns,
        "deployment/web",
        "--timeout=60s",
    ]);

    cp.kubectl_ok(&[
        "set",
        "image",
        "-n",
        &ns,
        "deployment/web",
        "app=example.com/web:v2",
    ]);
    cp.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        &ns,
        "deployment/web",
        "--timeout=60s",
    ]);

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
