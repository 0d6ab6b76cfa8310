//! A real Concourse v8.2.5 (web, one houdini worker, its own PostgreSQL) and `fly` on loopback,
//! from the bundle in `../shared/concourse` (see its README).
//!
//! The bundle is found through one environment variable, [`BUNDLE_VAR`]. Where it is missing, a
//! test that needs it fails under CI (`CI=true`, as `.ci/run` sets) and elsewhere says loudly what
//! it skipped and how to run it. `scripts/setup.sh` unpacks the bundle's binaries into the tool
//! cache with the bundle's own `install.sh`.
//!
//! The bundle's `up.sh` starts web, worker and database detached (the worker must run in the
//! private mount namespace only `up.sh` sets up), so they are not children of the test and do not
//! die with it: [`Concourse`] runs `down.sh` when dropped, panics included, and a guard process
//! runs it when the test dies without dropping it (SIGKILL, an abort): the guard waits on a pipe
//! only the test holds, and the kernel closes it however the test ends. The one window left is a
//! test killed while `up.sh` itself runs (`down.sh <state dir>` then; the state dir is printed).

pub mod rig;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The environment variable naming the bundle's directory (default `../shared/concourse`, relative
/// to the project root).
pub const BUNDLE_VAR: &str = "IRR_CONCOURSE_BUNDLE";

/// The Concourse bundle: its scripts, and `concourse` and `fly` as `install.sh` unpacked them.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    bin: PathBuf,
}

/// Whether a missing bundle fails the run: in CI (`CI=true`, as CI systems and `.ci/run` set it).
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

impl Bundle {
    /// The bundle, installed. `None` (after saying so loudly on stderr, naming `what` was skipped)
    /// when it is missing and not [`required`]; a panic when it is missing in CI, or present but
    /// not installed.
    pub fn find(what: &str) -> Option<Bundle> {
        let dir = std::env::var_os(BUNDLE_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::image::root().join("../shared/concourse"));
        if !dir.join("up.sh").is_file() {
            let why = format!(
                "no Concourse bundle at {} ({BUNDLE_VAR}; default ../shared/concourse)",
                dir.display()
            );
            assert!(!required(), "CI=true and {why}: {what} cannot run");
            eprintln!(
                "\n!!!!!!!!!!\n!!! SKIPPED: {what}\n!!! {why}.\n!!! Run it with: \
                 {BUNDLE_VAR}=/path/to/concourse-bundle scripts/setup.sh, then the same variable \
                 for the test (CI=true makes a missing bundle fail).\n!!!!!!!!!!\n"
            );
            return None;
        }
        let bin = crate::cache_dir().join("concourse/bin");
        assert!(
            bin.join("fly").is_file() && bin.join("concourse").is_file(),
            "the Concourse bundle at {} is not installed in {}: run scripts/setup.sh (it runs the \
             bundle's install.sh)",
            dir.display(),
            bin.display()
        );
        Some(Bundle { dir, bin })
    }

    /// The `fly` binary.
    pub fn fly(&self) -> PathBuf {
        self.bin.join("fly")
    }

    /// registry-image-resource's `check`, of the version the bundle's `registry-image` base
    /// type ships, as `scripts/setup.sh` took it out of the type's rootfs (a static binary).
    pub fn registry_image_check(&self) -> PathBuf {
        let metadata = self
            .dir
            .join("resource-types/registry-image/resource_metadata.json");
        let text = std::fs::read_to_string(&metadata)
            .unwrap_or_else(|e| panic!("{}: {e}", metadata.display()));
        let json: Value = serde_json::from_str(&text).expect("resource_metadata.json is JSON");
        let version = json["version"].as_str().expect("a version");
        let check = crate::cache_dir().join(format!("registry-image-resource/{version}/check"));
        assert!(
            check.is_file(),
            "{} is missing: run scripts/setup.sh (it takes it out of the bundle)",
            check.display()
        );
        check
    }
}

/// A running Concourse from `up.sh`, stopped by `down.sh` when dropped.
pub struct Concourse {
    bundle: Bundle,
    env: BTreeMap<String, String>,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    state: TempDir,
    /// Runs `down.sh` and removes the state dir when its stdin (a pipe only this process holds)
    /// closes without [`Drop`] having stopped it first.
    guard: Child,
}

impl Concourse {
    /// Starts web, worker and database with `settings` (up.sh's environment: `INTERVAL`,
    /// `SCHED_INTERVAL`, `EXTRA_RESOURCE_TYPES`, …) and waits until the worker runs.
    pub fn up(bundle: &Bundle, settings: &[(&str, &str)]) -> Concourse {
        let state = tempfile::Builder::new()
            .prefix("concourse-")
            .tempdir()
            .expect("tempdir");
        eprintln!(
            "concourse: up.sh {} (if this test is killed: {}/down.sh {0})",
            state.path().display(),
            bundle.dir.display()
        );
        let out = Command::new(bundle.dir.join("up.sh"))
            .arg(state.path())
            .env("CONCOURSE_BIN_DIR", &bundle.bin)
            .envs(settings.iter().copied())
            .output()
            .expect("run up.sh");
        // up.sh stops what it started when it fails, so there is nothing to tear down here.
        assert!(
            out.status.success(),
            "the bundle's up.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Its own process group, so a Ctrl-C of the test run (which signals the foreground group)
        // reaches the test, whose exit then closes the pipe, and not the guard.
        let guard = Command::new("sh")
            .args(["-c", r#"read _; "$0" "$1" >/dev/null 2>&1; rm -rf "$1""#])
            .arg(bundle.dir.join("down.sh"))
            .arg(state.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the Concourse guard");
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let flyrc = std::fs::read_to_string(Path::new(&env["FLY_HOME"]).join(".flyrc"))
            .expect("up.sh logs fly in");
        let token = flyrc
            .lines()
            .find_map(|l| l.trim().strip_prefix("value: "))
            .expect("a bearer token in .flyrc")
            .to_owned();
        crate::registry::install_crypto_provider();
        Concourse {
            bundle: bundle.clone(),
            env,
            token,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            state,
            guard,
        }
    }

    /// `http://127.0.0.1:PORT`, the ATC's external URL.
    pub fn url(&self) -> &str {
        &self.env["CONCOURSE_URL"]
    }

    /// `fly -t <target> args`, logged in as the owner of team `main`, to be run.
    pub fn fly_command(&self, args: &[&str]) -> Command {
        let mut fly = Command::new(self.bundle.fly());
        fly.env("HOME", &self.env["FLY_HOME"])
            .arg("-t")
            .arg(&self.env["FLY_TARGET"])
            .args(args);
        fly
    }

    /// Runs `fly -t <target> args`.
    pub fn fly(&self, args: &[&str]) -> Output {
        self.fly_command(args).output().expect("run fly")
    }

    /// `fly args`, which must succeed; its stdout.
    pub fn fly_ok(&self, args: &[&str]) -> String {
        let out = self.fly(args);
        assert!(
            out.status.success(),
            "fly {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `GET /api/v1/<path>` as the logged-in user, as JSON.
    pub fn api(&self, path: &str) -> Value {
        let req = self
            .http
            .get(format!("{}/api/v1/{path}", self.url()))
            .bearer_auth(&self.token);
        self.runtime.block_on(async {
            let resp = req.send().await.expect("the ATC answers");
            assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
            let body = resp.text().await.expect("a body");
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
        })
    }

    /// The events of a finished build, as `fly watch` receives them: the server-sent event stream
    /// of `/api/v1/builds/<id>/events` up to its `end` event (the ATC keeps the stream open after
    /// it), each `data:` line as JSON.
    pub fn events(&self, build: i64) -> Vec<Value> {
        let req = self
            .http
            .get(format!("{}/api/v1/builds/{build}/events", self.url()))
            .bearer_auth(&self.token);
        let body = self.runtime.block_on(async {
            let mut resp = req.send().await.expect("the ATC answers");
            assert!(
                resp.status().is_success(),
                "build {build} events: {}",
                resp.status()
            );
            let mut body = Vec::new();
            while !String::from_utf8_lossy(&body).contains("event: end") {
                match resp.chunk().await.expect("the event stream") {
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => break,
                }
            }
            String::from_utf8_lossy(&body).into_owned()
        });
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    /// `POST <url>` without credentials (a webhook); the status and body.
    pub fn post(&self, url: &str) -> (u16, String) {
        let req = self.http.post(url);
        self.runtime.block_on(async {
            let resp = req.send().await.expect("the ATC answers");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        })
    }

    /// Polls `probe` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; the end of web.log:\n{}",
                crate::process::tail(&self.state.path().join("logs/web.log"), 20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Concourse {
    fn drop(&mut self) {
        // The guard is not needed once down.sh runs here; killed, it runs nothing.
        let _ = self.guard.kill();
        let _ = self.guard.wait();
        let started = Instant::now();
        let out = Command::new(self.bundle.dir.join("down.sh"))
            .arg(self.state.path())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                eprintln!("concourse: down in {:.1?}", started.elapsed())
            }
            Ok(out) => eprintln!(
                "concourse: down.sh {} failed: {}",
                self.state.path().display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("concourse: cannot run down.sh: {e}"),
        }
    }
}
