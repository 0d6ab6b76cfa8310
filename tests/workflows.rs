//! The GitHub Actions files, checked by the real `actionlint` (rhysd/actionlint, built by
//! scripts/tools.sh from its pinned wrapper module): syntax, expressions, job and step keys,
//! action inputs, and shellcheck on `run:` scripts when shellcheck is installed.

use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn actionlint(files: &[&Path]) -> Output {
    actionlint_in(root(), files)
}

/// actionlint in the project `dir` (no files: every workflow under its `.github/workflows`).
fn actionlint_in(dir: &Path, files: &[&Path]) -> Output {
    let binary = testbed::tools_bin().join("actionlint");
    Command::new(&binary)
        .args(["-no-color", "-oneline"])
        .args(files)
        .current_dir(dir)
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

/// The app workflow the README offers for GitOps without Concourse.
#[test]
fn the_gitops_app_workflow_passes_actionlint() {
    assert_clean(&[&root().join("pipeline/github-actions-gitops.yml")]);
}

/// A workflow that `uses: ./` the action: actionlint checks its `with:` keys against
/// `action.yml` — real, as a misspelt input (`push_branch`) fails it.
#[test]
fn a_workflow_using_the_action_passes_actionlint_and_a_misspelt_input_fails_it() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join(".git")).unwrap();
    std::fs::copy(root().join("action.yml"), project.path().join("action.yml")).unwrap();
    let workflows = project.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let workflow = |extra: &str| {
        format!(
            "name: deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-24.04\n    steps:\n      - id: rollout\n        uses: ./\n        with:\n          image: ghcr.io/o/app@sha256:{}\n          uri: https://github.com/o/config.git\n          paths: deploy/\n          token: ${{{{ secrets.CONFIG_REPO_TOKEN }}}}\n{extra}      - run: echo \"$COMMIT\"\n        env:\n          COMMIT: ${{{{ steps.rollout.outputs.commit }}}}\n",
            "a".repeat(64)
        )
    };
    let file = workflows.join("deploy.yml");
    std::fs::write(&file, workflow("          push-branch: deploy/app\n")).unwrap();
    let out = actionlint_in(project.path(), &[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");

    std::fs::write(&file, workflow("          push_branch: deploy/app\n")).unwrap();
    let out = actionlint_in(project.path(), &[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("push_branch"), "{report}");
}

/// `action.yml` declares exactly the inputs and outputs the binary reads and writes, runs the
/// image of this version as `resource action`, and the README documents every input and output.
#[test]
fn action_metadata_matches_the_binary_and_the_readme() {
    use image_rollout_resource::action::{INPUTS, OUTPUTS};
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let names = |key: &str| -> Vec<String> {
        let mut names: Vec<String> = action[key].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    };
    let mut inputs: Vec<String> = INPUTS.iter().map(|(n, _)| n.to_string()).collect();
    inputs.sort();
    assert_eq!(names("inputs"), inputs);
    let mut outputs: Vec<String> = OUTPUTS.iter().map(|o| o.to_string()).collect();
    outputs.sort();
    assert_eq!(names("outputs"), outputs);

    let runs = &action["runs"];
    assert_eq!(runs["using"], "docker");
    let image = format!(
        "docker://ghcr.io/werdnum/image-rollout-resource:{}",
        image_rollout_resource::VERSION
    );
    assert_eq!(runs["image"], image.as_str());
    // The image's entrypoint is the binary (tests/image.rs checks it); `action` selects the mode.
    assert_eq!(runs["entrypoint"], serde_json::Value::Null);
    assert_eq!(runs["args"], serde_json::json!(["action"]));

    // The README's tables: one row per input and per output, `| \`name\` | …`.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## GitHub Action")
        .nth(1)
        .expect("a README section `## GitHub Action`");
    let section = section.split("\n## ").next().unwrap();
    let rows = |heading: &str| -> Vec<String> {
        let table = section
            .split(&format!("\n### {heading}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("a `### {heading}` table in the README's GitHub Action"));
        let mut names: Vec<String> = table
            .split("\n### ")
            .next()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    assert_eq!(rows("Inputs"), inputs, "README inputs vs action.yml");
    assert_eq!(rows("Outputs"), outputs, "README outputs vs action.yml");
}
