//! Running the resource's built binaries the way Concourse does: request JSON on stdin, the
//! step's directory as argv[1], result JSON on stdout, logs on stderr.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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
    let mut child = Command::new(binary)
        .args(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait for the step");
    StepResult {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
