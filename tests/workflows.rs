//! The GitHub Actions files, checked by the real `actionlint` (rhysd/actionlint, built by
//! scripts/tools.sh from its pinned wrapper module): syntax, expressions, job and step keys,
//! action inputs, and shellcheck on `run:` scripts when shellcheck is installed.

use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn actionlint(files: &[&Path]) -> Output {
    let binary = testbed::tools_bin().join("actionlint");
    Command::new(&binary)
        .args(["-no-color", "-oneline"])
        .args(files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/tools.sh builds it): {e}",
                binary.display()
            )
        })
}

fn assert_clean(files: &[&Path]) {
    let out = actionlint(files);
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn release_and_ci_workflows_pass_actionlint() {
    let dir = root().join(".github/workflows");
    let files = ["release.yml", "ci.yml"].map(|f| dir.join(f));
    assert_clean(&files.each_ref().map(|p| p.as_path()));
}

/// The webhook step is a fragment; it is linted inside the smallest workflow an app would have:
/// a job that pushes its image and then runs the step.
#[test]
fn the_actions_webhook_step_passes_actionlint_inside_a_workflow() {
    let step = std::fs::read_to_string(root().join("pipeline/github-actions-step.yml")).unwrap();
    let indented: String = step.lines().map(|l| format!("      {l}\n")).collect();
    let workflow = format!(
        "name: app\non:\n  push:\n    branches: [main]\njobs:\n  image:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo pushing the image\n{indented}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yml");
    std::fs::write(&file, workflow).unwrap();
    assert_clean(&[&file]);
}

/// The lint is real: a workflow with an unknown permission and a typo'd expression fails it.
#[test]
fn actionlint_rejects_a_broken_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    std::fs::write(
        &file,
        "on: push\npermissions:\n  id-tokens: write\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.shaa }}\n",
    )
    .unwrap();
    let out = actionlint(&[&file]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("id-tokens"), "{report}");
    assert!(report.contains("shaa"), "{report}");
}
