//! A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, and kwok simulating the kubelets of a few fake nodes, so pods are scheduled
//! and become Running/Ready (or fail, see [`PodFailure`]) and Deployments, StatefulSets and
//! DaemonSets roll out through the real controllers.
//!
//! All binaries come from `scripts/tools.sh` (pinned Kubernetes v1.35.4, etcd v3.6.16, kwok
//! v0.8.0). One control plane per test binary ([`ControlPlane::shared`]); tests isolate
//! themselves with [`ControlPlane::namespace`]. Disruptive tests (apiserver restarts) take a
//! private one ([`ControlPlane::start`]) so they do not disturb the tests running beside them.
//!
//! Everything of a control plane lives in one temporary directory: certificates, kubeconfigs,
//! etcd's data and one log per component (`<component>.log`); set `IRR_KEEP_CONTROLPLANE=1` to
//! keep it after the run. The processes die with the test binary however it ends (see
//! [`crate::process`]).

pub mod pki;
mod stages;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::process::Server;

/// Pods with a container whose image contains this fail to pull it ([`PodFailure::ImagePull`]).
pub const PULL_FAIL_MARKER: &str = "pullfail";
/// Pods with a container whose image contains this crash-loop ([`PodFailure::CrashLoop`]).
pub const CRASH_LOOP_MARKER: &str = "crashloop";
/// Pods with a container whose image contains this run but never become ready
/// ([`PodFailure::NeverReady`]).
pub const NEVER_READY_MARKER: &str = "neverready";
/// The termination message of a crash-looping container (`lastState.terminated.message`).
pub const CRASH_MESSAGE: &str = "panic: config missing";

/// How the fake kubelets make a pod fail, mimicking what a real kubelet reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodFailure {
    /// Pod stays Pending; the container waits with reason `ErrImagePull`, a second later
    /// `ImagePullBackOff` (for good), `restartCount` 0.
    ImagePull,
    /// Pod goes Running, never Ready; the container is terminated (reason `Error`, exit code 1,
    /// message [`CRASH_MESSAGE`]), a second later waits with reason `CrashLoopBackOff`, with that
    /// termination as `lastState.terminated` and `restartCount` 1.
    CrashLoop,
    /// Pod goes Running; the container runs but stays `ready: false` (a failing readiness
    /// probe): no error anywhere, only a progress deadline or a timeout ends such a rollout.
    NeverReady,
}

const NODES: usize = 3;
const SERVICE_CIDR: &str = "10.96.0.0/16";
const SERVICE_IP: &str = "10.96.0.1";
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running control plane. Dropping it (or the end of the test binary, for the shared one)
/// stops every process and removes its directory.
pub struct ControlPlane {
    dir: PathBuf,
    server: String,
    ca_pem: String,
    kubeconfig: PathBuf,
    /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.
    servers: Mutex<Vec<Server>>,
    /// Image patterns made to fail, in the order they were added (stage names use the index).
    failures: Mutex<Vec<(String, PodFailure)>>,
    namespaces: AtomicUsize,
    startup: Duration,
}

/// The kubectl built from the pinned Kubernetes release.
pub fn kubectl_path() -> PathBuf {
    crate::tools_bin().join("kubectl")
}

impl ControlPlane {
    /// The control plane of this test binary, started on first use and stopped when the binary
    /// exits.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        extern "C" fn stop_shared() {
            if let Some(cp) = SHARED.get() {
                cp.shutdown();
            }
        }
        SHARED.get_or_init(|| {
            let cp = ControlPlane::start();
            // Statics are never dropped; atexit is what removes the directory at the end.
            // SAFETY: registers a plain extern "C" function; nothing else to uphold.
            unsafe { libc::atexit(stop_shared) };
            cp
        })
    }

    /// Starts a private control plane (for tests that disrupt it); stopped when dropped.
    pub fn start() -> ControlPlane {
        ControlPlane::start_with(&[])
    }

    /// [`ControlPlane::start`] with `apiserver` flags added to kube-apiserver's (a later flag
    /// wins over an earlier one of the same name), e.g. `--authentication-config=FILE`.
    pub fn start_with(apiserver: &[String]) -> ControlPlane {
        let started = Instant::now();
        let bin = crate::tools_bin();
        for tool in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "kubectl",
        ] {
            assert!(
                bin.join(tool).is_file(),
                "{} missing: build the tools with scripts/tools.sh (or set IRR_TOOLS_BIN)",
                bin.join(tool).display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("irr-controlplane-")
            .tempdir()
            .unwrap()
            .keep();
        let file = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap();
            path.display().to_string()
        };

        let pki = pki::Pki::new();
        let ca_pem = pki.ca_pem();
        let ca = file("ca.crt", &ca_pem);
        let serving = pki.serving(SERVICE_IP);
        let serving_cert = file("apiserver.crt", &serving.cert_pem);
        let serving_key = file("apiserver.key", &serving.key_pem);
        let sa_key = file("sa.key", &pki.service_account_key_pem);
        let sa_pub = file("sa.pub", &pki.service_account_pub_pem);

        let port = free_port();
        let server = format!("https://127.0.0.1:{port}");
        let client_kubeconfig = |context: &str, user: &str, group: Option<&str>| {
            let pair = pki.client(user, group);
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            let credentials = format!(
                "client-certificate-data: {}\n    client-key-data: {}",
                b64(&pair.cert_pem),
                b64(&pair.key_pem)
            );
            file(
                &format!("{context}.kubeconfig"),
                &kubeconfig(&server, &ca_pem, context, &credentials, None),
            )
        };
        let admin = client_kubeconfig("admin", "admin", Some("system:masters"));
        // The controller manager and scheduler run as the identities the bootstrap RBAC policy
        // grants exactly their permissions, as in a kubeadm cluster.
        let kcm = client_kubeconfig(
            "kube-controller-manager",
            "system:kube-controller-manager",
            None,
        );
        let scheduler = client_kubeconfig("kube-scheduler", "system:kube-scheduler", None);

        let cp = ControlPlane {
            dir: dir.clone(),
            server,
            ca_pem,
            kubeconfig: PathBuf::from(&admin),
            servers: Mutex::new(Vec::new()),
            failures: Mutex::new(vec![
                (PULL_FAIL_MARKER.to_owned(), PodFailure::ImagePull),
                (CRASH_LOOP_MARKER.to_owned(), PodFailure::CrashLoop),
                (NEVER_READY_MARKER.to_owned(), PodFailure::NeverReady),
            ]),
            namespaces: AtomicUsize::new(0),
            startup: Duration::ZERO,
        };
        let log = |name: &str| dir.join(format!("{name}.log"));
        let (etcd_port, peer_port) = (free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        cp.launch(Server::start(
            "etcd",
            &bin.join("etcd"),
            args(&[
                "--name=default",
                &format!("--data-dir={}", dir.join("etcd").display()),
                &format!("--listen-client-urls={etcd_url}"),
                &format!("--advertise-client-urls={etcd_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=default={peer_url}"),
                // Test data: durability is not worth the fsync latency.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ]),
            &[],
            &log("etcd"),
        ));
        cp.launch(Server::start(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            args(&[
                &format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={port}"),
                &format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                &format!("--tls-cert-file={serving_cert}"),
                &format!("--tls-private-key-file={serving_key}"),
                &format!("--client-ca-file={ca}"),
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                &format!("--service-account-key-file={sa_pub}"),
                &format!("--service-account-signing-key-file={sa_key}"),
                &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                // The "kubernetes" Service's endpoint would be the loopback advertise address,
                // which Endpoints validation rejects; nothing here needs that Service.
                "--endpoint-reconciler-type=none",
                // On SIGTERM, drain the short requests, then close the rest (watches) within
                // 2s, instead of waiting up to the 60s request timeout for watches to end.
                "--shutdown-send-retry-after=true",
                "--allow-privileged=true",
                "--profiling=false",
            ])
            .into_iter()
            .chain(apiserver.iter().cloned())
            .collect(),
            &[],
            &log("kube-apiserver"),
        ));
        cp.wait_ready_apiserver();

        cp.launch(Server::start(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            args(&[
                &format!("--kubeconfig={kcm}"),
                "--use-service-account-credentials=true",
                &format!("--root-ca-file={ca}"),
                &format!("--service-account-private-key-file={sa_key}"),
                "--leader-elect=false",
                // No HTTPS endpoint: nothing probes it, and fixed default ports would collide
                // between control planes running side by side.
                "--secure-port=0",
                // Untaint nodes soon after kwok marks them Ready (default 5s).
                "--node-monitor-period=1s",
            ]),
            &[],
            &log("kube-controller-manager"),
        ));
        cp.launch(Server::start(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            args(&[
                &format!("--kubeconfig={scheduler}"),
                "--leader-elect=false",
                "--secure-port=0",
            ]),
            &[],
            &log("kube-scheduler"),
        ));

        cp.kubectl_stdin(&["apply", "-f", "-"], stages::CRD);
        cp.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/stages.kwok.x-k8s.io",
            "--timeout=60s",
        ]);
        cp.apply_stages(&cp.failures.lock().unwrap());
        // HOME: kwok also reads ~/.kwok/kwok.yaml when present; keep it to what is set here.
        let home = dir.display().to_string();
        cp.launch(Server::start(
            "kwok",
            &bin.join("kwok"),
            args(&[
                &format!("--kubeconfig={admin}"),
                "--manage-all-nodes=true",
                "--enable-crds=Stage",
                "--node-lease-duration-seconds=40",
                "--cidr=10.0.0.0/16",
            ]),
            &[("HOME", home.as_str())],
            &log("kwok"),
        ));

        let nodes: Vec<String> = (0..NODES).map(node_manifest).collect();
        cp.kubectl_stdin(&["apply", "-f", "-"], &nodes.join("---\n"));
        cp.wait_for("the nodes to be Ready and untainted", || {
            let out = cp.kubectl(&[
                "get",
                "nodes",
                "-o",
                r#"jsonpath={range .items[*]}{.spec.taints}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
            ]);
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success() && text.lines().filter(|l| *l == "|True").count() == NODES
        });
        let mut cp = cp;
        cp.startup = started.elapsed();
        cp
    }

    /// The admin kubeconfig file (user `admin` in group `system:masters`, context `admin`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The admin kubeconfig as text (context `admin`, credentials inline).
    pub fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }

    /// `https://127.0.0.1:PORT`
    pub fn server(&self) -> String {
        self.server.clone()
    }

    /// The cluster CA certificate (PEM), which signed the apiserver's serving certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The directory holding the certificates, kubeconfigs, etcd data and component logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Time from the start of [`ControlPlane::start`] until nodes were Ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Resident memory (VmRSS, bytes) of each of the control plane's processes, by component.
    pub fn resident_memory(&self) -> Vec<(String, u64)> {
        self.servers()
            .iter()
            .map(|s| (s.name().to_owned(), s.rss_bytes()))
            .collect()
    }

    /// Creates a fresh namespace named `<prefix>-<n>` and waits for its `default`
    /// ServiceAccount (pods cannot be created before the controller manager made it).
    pub fn namespace(&self, prefix: &str) -> String {
        let n = self.namespaces.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{n}");
        assert!(
            name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "namespace {name:?} is not a DNS label: use lowercase letters, digits and '-'"
        );
        self.kubectl_ok(&["create", "namespace", &name]);
        self.kubectl_ok(&[
            "wait",
            "--for=create",
            "serviceaccount/default",
            "-n",
            &name,
            "--timeout=60s",
        ]);
        name
    }

    /// Runs the pinned kubectl as admin against this control plane.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args)
            .output()
            .expect("cannot run kubectl")
    }

    /// Runs kubectl as admin; panics with its stderr if it fails; returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        checked(args, self.kubectl(args))
    }

    /// The image of the first container in `object`'s pod template (`deploy/web`).
    pub fn template_image(&self, namespace: &str, object: &str) -> String {
        self.kubectl_ok(&[
            "-n",
            namespace,
            "get",
            object,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
    }

    /// `kubectl rollout status` of `object` (`deploy/web`), up to two minutes; panics on failure.
    pub fn rollout_status(&self, namespace: &str, object: &str) {
        self.kubectl_ok(&[
            "-n",
            namespace,
            "rollout",
            "status",
            object,
            "--timeout=120s",
        ]);
    }

    /// `kubectl apply -n <namespace> -f -` with `yaml` on stdin; panics on failure.
    pub fn apply(&self, namespace: &str, yaml: &str) {
        self.kubectl_stdin(&["apply", "-n", namespace, "-f", "-"], yaml);
    }

    /// A token for ServiceAccount `name` in `namespace` (created if missing), minted with the
    /// TokenRequest API (`kubectl create token`), valid for an hour.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.apply(
            namespace,
            &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"),
        );
        self.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=1h"])
            .trim()
            .to_owned()
    }

    /// A kubeconfig (YAML) that authenticates with `token`, its context (`token`) set to
    /// `namespace`.
    pub fn kubeconfig_for_token(&self, namespace: &str, token: &str) -> String {
        kubeconfig(
            &self.server,
            &self.ca_pem,
            "token",
            &format!("token: {token}"),
            Some(namespace),
        )
    }

    /// From now on, pods with a container whose image contains `pattern` (a full
    /// `repo@sha256:…` reference, or any distinctive part of one) fail as `failure` says.
    /// Call it before the pods are created; it does not change existing pods. Patterns that
    /// overlap select pods of both failures, with undefined results. Only regular containers
    /// are matched, not init containers.
    pub fn fail_images(&self, pattern: &str, failure: PodFailure) {
        stages::check_pattern(pattern);
        let mut failures = self.failures.lock().unwrap();
        failures.push((pattern.to_owned(), failure));
        self.apply_stages(&failures);
    }

    /// Applies every stage each time (unchanged ones are no-ops), since the default stages'
    /// exclusion names all patterns; callers hold the `failures` lock so that concurrent calls
    /// cannot apply an older list last.
    fn apply_stages(&self, failures: &[(String, PodFailure)]) {
        // No client-side validation: it downloads the OpenAPI documents first, which costs
        // seconds at start-up; these stages are fixed and the tests exercise every one of them.
        let apply = ["apply", "--validate=false", "-f", "-"];
        self.kubectl_stdin(&apply, &stages::render(failures));
    }

    /// Stops kube-apiserver (SIGTERM, as a rolling control-plane upgrade does) and starts it
    /// again with the same flags, port and etcd data; returns once it is ready.
    pub fn restart_apiserver(&self) {
        {
            let mut servers = self.servers();
            let apiserver = servers
                .iter_mut()
                .find(|s| s.name() == "kube-apiserver")
                .unwrap();
            apiserver.restart(Duration::from_secs(30));
        }
        self.wait_ready_apiserver();
    }

    fn launch(&self, server: Server) {
        self.servers().push(server);
    }

    fn servers(&self) -> MutexGuard<'_, Vec<Server>> {
        // A test that panicked while holding the lock leaves the list itself intact.
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_ready_apiserver(&self) {
        let addr = self.server.trim_start_matches("https://").to_owned();
        self.wait_for("kube-apiserver to be ready", || {
            // A TCP probe first: each kubectl run costs CPU the starting apiserver needs.
            TcpStream::connect(&addr).is_ok()
                && self.kubectl(&["get", "--raw=/readyz"]).status.success()
        });
    }

    /// Polls `ready` until it holds; panics with a component's log tail if one exits meanwhile,
    /// or with every log's tail on timeout.
    fn wait_for(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.servers().iter_mut().for_each(Server::ensure_running);
            if ready() {
                return;
            }
            if Instant::now() > deadline {
                let tails: Vec<String> = self
                    .servers()
                    .iter()
                    .map(|s| format!("--- {}:\n{}", s.name(), s.log_tail(15)))
                    .collect();
                panic!(
                    "timed out after {START_TIMEOUT:?} waiting for {what}\n{}",
                    tails.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_path());
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.join("kubectl-cache").display()
            ))
            .args(args);
        cmd
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .kubectl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        checked(args, child.wait_with_output().unwrap())
    }

    fn shutdown(&self) {
        let mut servers = self.servers();
        while let Some(mut server) = servers.pop() {
            server.stop(Duration::ZERO);
        }
        if std::env::var_os("IRR_KEEP_CONTROLPLANE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn checked(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A port free on loopback right now (the OS picks it; the small race with other processes
/// binding it before the component does shows up as that component failing to start).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A kubeconfig with one cluster, one user (`credentials`: the YAML fields of `user`, indented
/// for it) and one context named `context`.
fn kubeconfig(
    server: &str,
    ca_pem: &str,
    context: &str,
    credentials: &str,
    namespace: Option<&str>,
) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let namespace = namespace
        .map(|ns| format!("\n    namespace: {ns}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {context}
  user:
    {credentials}
contexts:
- name: {context}
  context:
    cluster: testbed
    user: {context}{namespace}
current-context: {context}
"
    )
}

/// A fake node for kwok to manage; labels as a kubelet would set them.
fn node_manifest(i: usize) -> String {
    format!(
        "apiVersion: v1
kind: Node
metadata:
  name: kwok-node-{i}
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-{i}
    kubernetes.io/os: linux
    type: kwok
"
    )
}
