//! Running the GitHub Action the way the runner runs a Docker action: `resource action` (the
//! image's entrypoint and argument in `action.yml`) with exactly the environment a runner sets —
//! each input as `INPUT_<NAME>`, the file commands `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`, the
//! workspace, and the run's `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY` and `GITHUB_RUN_ID` — and
//! nothing else from the test's own environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The run the commit message links back to.
pub const REPOSITORY: &str = "werdnum/family-assistant";
pub const RUN_ID: &str = "4242";

/// What one run of the action did.
#[derive(Debug)]
pub struct ActionRun {
    pub code: Option<i32>,
    pub stderr: String,
    /// `$GITHUB_OUTPUT`, parsed as the runner parses it (`name<<DELIMITER` blocks and `name=value`).
    pub outputs: BTreeMap<String, String>,
    pub summary: String,
}

impl ActionRun {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn output(&self, name: &str) -> &str {
        assert!(self.ok(), "the action failed:\n{}", self.stderr);
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("no output {name}: {:?}", self.outputs))
    }

    /// Asserts the failure contract: exit 1, one `::error` workflow command, no panic, no
    /// output written; returns the error's text.
    pub fn error(&self) -> String {
        assert_eq!(self.code, Some(1), "exit code; stderr:\n{}", self.stderr);
        for noise in ["panicked", "Caused by", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(noise), "{noise:?}:\n{}", self.stderr);
        }
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("::error"))
            .collect();
        assert_eq!(errors.len(), 1, "one ::error line:\n{}", self.stderr);
        assert!(
            self.outputs.is_empty(),
            "outputs of a failed run: {:?}",
            self.outputs
        );
        errors[0]
            .split_once("::")
            .unwrap()
            .1
            .split_once("::")
            .unwrap()
            .1
            .to_string()
    }

    pub fn assert_never_prints(&self, secret: &str) {
        for (what, text) in [("stderr", &self.stderr), ("summary", &self.summary)] {
            assert!(!text.contains(secret), "secret in {what}: {text}");
        }
        for value in self.outputs.values() {
            assert!(!value.contains(secret), "secret in an output: {value}");
        }
    }
}

/// Runs `binary action` with `inputs` (name as in `action.yml` → value); `server_url` is the
/// `GITHUB_SERVER_URL` (the Git server's base, so that commit links can be checked).
pub fn run(binary: &Path, inputs: &[(&str, &str)], server_url: &str) -> ActionRun {
    let dir = tempfile::tempdir().expect("tempdir");
    let (output, summary) = (dir.path().join("output"), dir.path().join("summary"));
    for (file, text) in [(&output, ""), (&summary, "")] {
        std::fs::write(file, text).unwrap();
    }
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("action")
        .current_dir(&workspace)
        .env_clear()
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_WORKSPACE", &workspace)
        .env("GITHUB_SERVER_URL", server_url)
        .env("GITHUB_REPOSITORY", REPOSITORY)
        .env("GITHUB_RUN_ID", RUN_ID);
    for (name, value) in inputs {
        // As the runner names them: upper-cased, spaces as `_`, hyphens kept.
        command.env(
            format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
            value,
        );
    }
    let out = command.output().expect("run the action");
    let outputs = std::fs::read_to_string(&output).unwrap();
    ActionRun {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: parse_outputs(&outputs),
        summary: std::fs::read_to_string(&summary).unwrap(),
    }
}

/// The runner's reading of a `GITHUB_OUTPUT` file.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            outputs.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_string(), value.to_string());
        }
    }
    outputs
}
