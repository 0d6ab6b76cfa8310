//! A Helm chart in the shapes widely used charts have (`tests/fixtures/charts`: `helm create`'s
//! values, Bitnami's registry/repository/digest, ingress-nginx's registry/image/digest, a
//! `repo:tag@digest` pin, and a template that is not YAML), and what a GitOps deploy of
//! [`REPO`]`@digest` found under the tag `main` must make of them. Both the put
//! (`tests/gitops.rs`) and the GitHub Action (`tests/action.rs`) are held to it.

use std::path::Path;

/// The repository the chart deploys.
pub const REPO: &str = "registry.example.test/team/app";
/// The tag the deployed digest was found under.
pub const TAG: &str = "main";
/// Where the chart sits in the config repository.
pub const DIR: &str = "chart";

const FILES: [&str; 6] = [
    "Chart.yaml",
    "bitnami-values.yaml",
    "ingress-values.yaml",
    "pinned-values.yaml",
    "templates/deployment.yaml",
    "values.yaml",
];

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/charts")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The chart's files as `(path in the repository, text)`.
pub fn files() -> Vec<(String, String)> {
    FILES
        .iter()
        .map(|f| (format!("{DIR}/{f}"), fixture(f)))
        .collect()
}

/// Every file after the deploy: only the image values changed, byte for byte.
pub fn expected(digest: &str) -> Vec<(String, String)> {
    let a = format!("sha256:{}", "a".repeat(64));
    let c = format!("sha256:{}", "c".repeat(64));
    files()
        .into_iter()
        .map(|(path, text)| {
            let text = match path.rsplit('/').next().unwrap() {
                "values.yaml" => text.replace("tag: \"\"", &format!("tag: \"{TAG}@{digest}\"")),
                "bitnami-values.yaml" => {
                    text.replacen("digest: \"\"", &format!("digest: \"{digest}\""), 1)
                }
                "ingress-values.yaml" => {
                    text.replace(&format!("digest: {a}"), &format!("digest: {digest}"))
                }
                "pinned-values.yaml" => {
                    text.replace(&format!("{TAG}@{c}"), &format!("{TAG}@{digest}"))
                }
                _ => text,
            };
            (path, text)
        })
        .collect()
}

/// The files the deploy changes, sorted.
pub fn changed() -> Vec<String> {
    [
        "bitnami-values.yaml",
        "ingress-values.yaml",
        "pinned-values.yaml",
        "values.yaml",
    ]
    .iter()
    .map(|f| format!("{DIR}/{f}"))
    .collect()
}

/// The references the deploy replaces, as the put and the Action report them (sorted).
pub fn previous() -> String {
    let a = format!("sha256:{}", "a".repeat(64));
    let c = format!("sha256:{}", "c".repeat(64));
    [
        format!("{REPO}:"),
        format!("{REPO}:1.27.3-debian-12-r0"),
        format!("{REPO}:{TAG}@{c}"),
        format!("{REPO}@{a}"),
    ]
    .join(", ")
}

/// The chart's files on `branch` of `server` are [`expected`] for `digest`, byte for byte.
pub fn assert_deployed(server: &crate::git::GitServer, branch: &str, digest: &str) {
    for (file, content) in expected(digest) {
        assert_eq!(
            server.git(&["show", &format!("{branch}:{file}")]),
            content,
            "{file} on {branch}"
        );
    }
}
