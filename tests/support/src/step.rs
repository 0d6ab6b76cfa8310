//! Running the resource's built binaries the way Concourse does: request JSON on stdin, the
//! step's directory as argv[1], result JSON on stdout, logs on stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use libc::{SIGINT, SIGTERM};

/// What one step printed and how it ended.
#[derive(Debug)]
pub struct StepResult {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl StepResult {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The stdout JSON of a successful step; panics with the step's stderr otherwise.
    pub fn json(&self) -> serde_json::Value {
        assert!(self.ok(), "step failed ({:?}):\n{}", self.code, self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// Asserts the failure contract every bad input must meet, and returns the error line:
    /// exit ≠ 0, nothing on stdout, and a last stderr line `error: …` with no panic and no
    /// error-chain noise.
    pub fn error_line(&self) -> String {
        assert!(!self.ok(), "step unexpectedly succeeded:\n{}", self.stdout);
        assert_eq!(self.code, Some(1), "exit code; stderr:\n{}", self.stderr);
        assert!(
            self.stdout.trim().is_empty(),
            "stdout on failure: {:?}",
            self.stdout
        );
        for noise in ["panicked", "Caused by", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !self.stderr.contains(noise),
                "{noise:?} in stderr:\n{}",
                self.stderr
            );
        }
        let last = self.stderr.lines().last().unwrap_or_default().to_string();
        assert!(
            last.starts_with("error: "),
            "last stderr line is not `error: …`:\n{}",
            self.stderr
        );
        assert_eq!(
            self.stderr.matches("error: ").count(),
            1,
            "more than one error line:\n{}",
            self.stderr
        );
        last
    }

    /// Asserts that `secret` appears nowhere in what the step printed.
    pub fn assert_never_prints(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret),
            "secret on stdout: {}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(secret),
            "secret on stderr: {}",
            self.stderr
        );
    }
}

/// Runs the `check` binary for `source`, from `version` (a digest) if given.
pub fn check(binary: &str, source: &serde_json::Value, version: Option<&str>) -> StepResult {
    let mut request = serde_json::json!({ "source": source });
    if let Some(digest) = version {
        request["version"] = serde_json::json!({ "digest": digest });
    }
    run(binary, None, &request, &[])
}

/// Runs `binary` with `request` on stdin, `dir` (if any) as its argument and extra `env`.
pub fn run(
    binary: &str,
    dir: Option<&Path>,
    request: &serde_json::Value,
    env: &[(&str, &str)],
) -> StepResult {
    run_raw(binary, dir, &request.to_string(), env)
}

/// Runs `binary` with raw text on stdin (for malformed-input tests).
pub fn run_raw(binary: &str, dir: Option<&Path>, stdin: &str, env: &[(&str, &str)]) -> StepResult {
    let (command, _tmp) = command(binary, dir, env);
    finish(spawn(command, stdin))
}

/// Runs `binary` as in a pod with a service account: in a private mount namespace with a tmpfs
/// over `/run` (and `/var/run`, where it is not a link to `/run`) holding `files` in
/// `/var/run/secrets/kubernetes.io/serviceaccount`. That path belongs to the host — on a CI
/// runner that is itself a pod, it holds the runner's own credentials — so the step gets its
/// own view of it and the host's stays as it was.
pub fn run_with_service_account(
    binary: &str,
    dir: &Path,
    request: &serde_json::Value,
    env: &[(&str, &str)],
    files: &[(&str, &str)],
) -> StepResult {
    let staged = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        std::fs::write(staged.path().join(name), content).expect("stage a service account file");
    }
    let script = r#"set -e
mount -t tmpfs tmpfs /run
[ -L /var/run ] || mount -t tmpfs tmpfs /var/run
sa=/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$sa"
cp "$1"/* "$sa"/
shift
exec "$@""#;
    let mut command = Command::new("unshare");
    // SAFETY: geteuid(2) only reads this process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(staged.path())
        .arg(binary)
        .arg(dir);
    let _tmp = own_tmp(&mut command);
    command.envs(env.iter().copied());
    finish(spawn(command, &request.to_string()))
}

/// A finished step with what it cost.
#[derive(Debug)]
pub struct Measured {
    pub result: StepResult,
    pub elapsed: std::time::Duration,
    /// Peak resident set size, from the kernel's accounting of the child (`ru_maxrss`).
    pub peak_rss_bytes: u64,
}

/// Runs `binary` like [`run`], measuring its wall time and peak memory.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child itself, to get its rusage"
)]
pub fn run_measured(
    binary: &str,
    dir: Option<&Path>,
    request: &serde_json::Value,
    env: &[(&str, &str)],
) -> Measured {
    let started = std::time::Instant::now();
    let (command, _tmp) = command(binary, dir, env);
    let mut child = spawn(command, &request.to_string());
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = String::new();
    let _ = stdout.read_to_string(&mut out);
    let pid = i32::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4(2) fills it and reaps our own child (whose
    // `Child` handle is not waited on afterwards).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let elapsed = started.elapsed();
    Measured {
        result: StepResult {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            stdout: out,
            stderr: err.join().expect("stderr reader"),
        },
        elapsed,
        peak_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    }
}

fn command(binary: &str, dir: Option<&Path>, env: &[(&str, &str)]) -> (Command, TempDir) {
    let mut command = Command::new(binary);
    command.args(dir);
    let tmp = own_tmp(&mut command);
    command.envs(env.iter().copied());
    (command, tmp)
}

/// A `TMPDIR` of the step's own (unless `env` sets one), removed with the returned directory:
/// the steps remember registries' auth challenges there (src/registry/remembered.rs), which
/// must neither outlive a test nor carry over from one test to the next.
fn own_tmp(command: &mut Command) -> TempDir {
    let tmp = tempfile::tempdir().expect("a TMPDIR for the step");
    command.env("TMPDIR", tmp.path());
    tmp
}

/// Starts `command` with `stdin` written and closed, stdout and stderr piped.
fn spawn(mut command: Command, stdin: &str) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child
}

fn finish(child: Child) -> StepResult {
    let output = child.wait_with_output().expect("wait for the step");
    StepResult {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A step still running, for tests that act while it works (restart a server, send a signal).
pub struct Running {
    child: Child,
    stderr: BufReader<ChildStderr>,
    /// stderr read so far.
    log: String,
    _tmp: TempDir,
}

impl Running {
    pub fn start(
        binary: &str,
        dir: Option<&Path>,
        request: &serde_json::Value,
        env: &[(&str, &str)],
    ) -> Running {
        let (command, tmp) = command(binary, dir, env);
        let mut child = spawn(command, &request.to_string());
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stderr,
            log: String::new(),
            _tmp: tmp,
        }
    }

    /// Reads stderr until a line containing `needle`, and returns that line; panics with the
    /// log if the step ends first.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.stderr.read_line(&mut line).expect("read stderr");
            assert!(
                n > 0,
                "the step ended before printing {needle:?}:\n{}",
                self.log
            );
            self.log.push_str(&line);
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The step's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the step a real signal ([`SIGTERM`], as Concourse's worker does on an abort).
    pub fn signal(&self, signal: i32) {
        crate::process::signal(self.child.id(), signal);
    }

    /// Sends `signal` (as [`Running::signal`]) and waits for the step to end: everything it
    /// printed, and how long it took to exit after the signal.
    pub fn stop(self, signal: i32) -> (StepResult, Duration) {
        let signalled = Instant::now();
        self.signal(signal);
        let result = self.finish();
        (result, signalled.elapsed())
    }

    /// Waits for the step to end and returns everything it printed.
    pub fn finish(mut self) -> StepResult {
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).expect("read stderr");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_string(&mut stdout)
            .expect("read stdout");
        let status = self.child.wait().expect("wait for the step");
        StepResult {
            code: status.code(),
            stdout,
            stderr: self.log + &rest,
        }
    }
}
