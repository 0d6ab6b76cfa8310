//! A real GitOps agent: Flux's source-controller and kustomize-controller (built from the Go
//! module proxy by `scripts/tools.sh`, with the CRDs of the same version) run as processes against
//! a test control plane, watching a repository of the loopback Git server.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::cluster::ControlPlane;
use crate::process::Server;
use crate::registry::free_port;

/// How often Flux looks at the repository here (its default is minutes).
pub const INTERVAL: &str = "3s";

pub struct Flux {
    servers: Vec<Server>,
    _dir: TempDir,
}

impl Drop for Flux {
    fn drop(&mut self) {
        for s in &mut self.servers {
            s.stop(Duration::from_secs(5));
        }
    }
}

fn tool(name: &str) -> PathBuf {
    let path = crate::tools_bin().join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/tools.sh (it builds Flux from the Go module proxy)",
        path.display()
    );
    path
}

impl Flux {
    /// Installs the CRDs and starts both controllers with the control plane's admin identity.
    pub fn start(cp: &ControlPlane) -> Flux {
        for name in ["source-controller", "kustomize-controller"] {
            let crds = tool(&format!("{name}.crds.yaml"));
            // Server-side: the CRDs are too large for the last-applied annotation.
            cp.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
        }
        cp.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ]);
        let dir = tempfile::Builder::new()
            .prefix("flux-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("storage")).unwrap();
        let kubeconfig = cp.kubeconfig_path().to_str().unwrap().to_string();
        let env = [("KUBECONFIG", kubeconfig.as_str())];
        let addr = |flag: &str| format!("--{flag}=127.0.0.1:{}", free_port().port());
        let storage = free_port();
        let source = Server::start(
            "source-controller",
            &tool("source-controller"),
            vec![
                format!("--storage-path={}", dir.path().join("storage").display()),
                format!("--storage-addr=127.0.0.1:{}", storage.port()),
                format!("--storage-adv-addr=127.0.0.1:{}", storage.port()),
                addr("metrics-addr"),
                addr("health-addr"),
                "--enable-leader-election=false".into(),
            ],
            &env,
            &dir.path().join("source-controller.log"),
        );
        let kustomize = Server::start(
            "kustomize-controller",
            &tool("kustomize-controller"),
            vec![
                addr("metrics-addr"),
                addr("health-addr"),
                "--enable-leader-election=false".into(),
                "--no-remote-bases=true".into(),
            ],
            &env,
            &dir.path().join("kustomize-controller.log"),
        );
        Flux {
            servers: vec![source, kustomize],
            _dir: dir,
        }
    }

    /// Makes Flux apply `path` of the repository at `url` (branch `main`, basic auth) into
    /// `namespace`, polling every [`INTERVAL`].
    pub fn sync(&self, cp: &ControlPlane, namespace: &str, url: &str, user: &str, password: &str) {
        cp.apply(
            namespace,
            &format!(
                r#"apiVersion: v1
kind: Secret
metadata: {{name: git-credentials}}
stringData: {{username: "{user}", password: "{password}"}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: config}}
spec:
  interval: {INTERVAL}
  url: {url}
  ref: {{branch: main}}
  secretRef: {{name: git-credentials}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps}}
spec:
  interval: {INTERVAL}
  sourceRef: {{kind: GitRepository, name: config}}
  path: ./deploy
  prune: true
  targetNamespace: {namespace}
  timeout: 1m
"#
            ),
        );
    }

    /// The controllers' last log lines (for failure messages).
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("--- {}\n{}", s.name(), s.log_tail(30)))
            .collect()
    }

    /// Panics with the logs if a controller died.
    pub fn ensure_running(&mut self) {
        for s in &mut self.servers {
            s.ensure_running();
        }
    }
}
