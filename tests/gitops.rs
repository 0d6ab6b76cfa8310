//! `out` in GitOps mode (`source.git`) against a real Git server: Debian's `git http-backend`
//! behind lighttpd with basic auth (and TLS), or Debian's OpenSSH sshd running `git-shell`, seeded
//! and checked by the real `git` CLI.
//!
//! Most tests set no cluster keys, so `out` commits and pushes and does not wait; the agent end to
//! end (Flux applying the commit, the read-only wait, the revert) is `tests/flux.rs`. The tests
//! with cluster keys use the shared test control plane and the shipped read-only identity, with
//! no agent: what they check happens before the push, or while `out` waits for the agent.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::charts;
use testbed::cluster::ControlPlane;
use testbed::git::{GitServer, PASSPHRASE, PASSWORD, READ_ONLY, SEED_AUTHOR, USER};
use testbed::step::{self, Running, SIGINT, SIGTERM, StepResult};

const REPO: &str = "registry.example.test/team/app";
const AUTHOR: &str = "CI Bot <ci@example.test>";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A Deployment as people write them: comments, quoting, a sidecar, flow style.
const DEPLOYMENT: &str = r#"# web tier — owned by the platform team
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep in sync with the Service
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: migrate
        image: "registry.example.test/team/app:v1"
      containers:
        - name: app
          image: registry.example.test/team/app:v1 # bumped by CI
          args: ["--port", "8080"]
        - image: 'registry.example.test/team/envoy:1.30'
          name: proxy
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: registry.example.test/team/app:v1}]
"#;

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: registry.example.test/team/app\n    newTag: v1   # CI pins this\n";

const VALUES: &str = "# Helm values\nreplicaCount: 2\nimage: registry.example.test/team/app:main\nservice: {port: 80}\n";

fn seed(server: &GitServer) -> String {
    server.commit(
        "main",
        &[
            ("deploy/deployment.yaml", DEPLOYMENT),
            ("deploy/kustomization.yaml", KUSTOMIZATION),
            ("deploy/nested/values.yml", VALUES),
            (
                "deploy/README.md",
                "image: registry.example.test/team/app:v1\n",
            ),
            ("other/deployment.yaml", DEPLOYMENT),
        ],
        "seed",
    )
}

/// The put's `source` for `server`: over https with the user and password, over ssh with the
/// ed25519 key and the server's known_hosts.
fn source(server: &GitServer) -> Value {
    let (name, email) = AUTHOR.split_once(" <").unwrap();
    let mut git = json!({
        "uri": server.url,
        "branch": "main",
        "paths": ["deploy/"],
        "author_name": name,
        "author_email": email.trim_end_matches('>'),
    });
    match (&server.ca_pem, &server.ssh) {
        (_, Some(ssh)) => {
            git["private_key"] = json!(ssh.key("ed25519"));
            git["known_hosts"] = json!(ssh.known_hosts);
        }
        (Some(ca), None) => git["ca_certs"] = json!([ca]),
        (None, None) => git["insecure"] = json!(true),
    }
    if server.ssh.is_none() {
        git["username"] = json!(USER);
        git["password"] = json!(PASSWORD);
    }
    json!({"repository": REPO, "git": git})
}

fn out(source: &Value, digest: &str) -> StepResult {
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "params": {"digest": digest}});
    let result = step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]);
    result.assert_never_prints(PASSWORD);
    result.assert_never_prints(PASSPHRASE);
    // No line of a private key (the BEGIN/END lines are not secret).
    let key = source["git"]["private_key"].as_str().unwrap_or_default();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        result.assert_never_prints(line);
    }
    result
}

fn metadata(output: &Value, name: &str) -> String {
    output["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metadata {name}: {output}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the files must read after the put: the seed with exactly the image values changed.
fn expected(d: &str) -> [(&'static str, String); 3] {
    let image = format!("{REPO}@{d}");
    [
        (
            "deploy/deployment.yaml",
            DEPLOYMENT.replace(&format!("{REPO}:v1"), &image),
        ),
        (
            "deploy/kustomization.yaml",
            KUSTOMIZATION.replace("newTag: v1", &format!("digest: {d}")),
        ),
        (
            "deploy/nested/values.yml",
            VALUES.replace(&format!("{REPO}:main"), &image),
        ),
    ]
}

/// The real git's verdict on what the put pushed: a clean `fsck --strict`, exactly `commits` new
/// commits since `base`, the top one by the configured author.
fn assert_pushed(server: &GitServer, base: &str, commits: usize) {
    server.git(&["fsck", "--strict", "--no-dangling"]);
    let count = server.git(&["rev-list", "--count", &format!("{base}..main")]);
    assert_eq!(count.trim(), commits.to_string(), "new commits on main");
    let author = server.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]);
    assert_eq!(author.trim(), format!("{AUTHOR}|{AUTHOR}"));
}

/// A put of a `get` step's directory (a release `check` found): the commit subject names the tag
/// beside the digest, and so does the version the put reports.
#[test]
fn the_commit_names_the_tag_of_the_version_deployed() {
    let server = GitServer::start();
    seed(&server);
    let d = digest(7);
    let dir = fetched(&d, "1.4.2");
    let request = json!({"source": source(&server), "params": {"image": "app-image"}});
    let output = step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]).json();
    assert_eq!(output["version"], json!({"digest": d, "tag": "1.4.2"}));
    let subject = server.git(&["log", "-1", "--format=%s", "main"]);
    assert_eq!(subject.trim(), format!("deploy {REPO}@{d} (1.4.2)"));
}

/// A build directory with a `get` step's `app-image/`: the digest and the tag `check` found it
/// under.
fn fetched(d: &str, tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fetched = dir.path().join("app-image");
    std::fs::create_dir(&fetched).unwrap();
    for (file, text) in [("repository", REPO), ("digest", d), ("tag", tag)] {
        std::fs::write(fetched.join(file), text).unwrap();
    }
    dir
}

/// A Helm chart in the shapes widely used charts have: each values file gets the digest where
/// its chart takes it, the template (not YAML, and not naming the image) is left alone.
#[test]
fn helm_values_get_the_digest_where_each_chart_takes_it_and_templates_are_left_alone() {
    let server = GitServer::start();
    let files = charts::files();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let base = server.commit("main", &files, "seed");
    let d = digest(8);
    let dir = fetched(&d, charts::TAG);
    let mut source = source(&server);
    source["git"]["paths"] = json!([charts::DIR]);
    let request = json!({"source": source, "params": {"image": "app-image"}});
    let output = step::run(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]).json();

    assert_pushed(&server, &base, 1);
    assert_eq!(metadata(&output, "files"), charts::changed().join(", "));
    assert_eq!(metadata(&output, "previous_images"), charts::previous());
    charts::assert_deployed(&server, "main", &d);
}

/// `push_branch`: `main` is not touched; the branch is created on `main`, and once merged and
/// `main` has moved on, the next put is a fast-forward of it from `main`'s tip.
#[test]
fn push_branch_leaves_main_alone_and_fast_forwards_the_branch() {
    let server = GitServer::start();
    let base = seed(&server);
    let mut source = source(&server);
    source["git"]["push_branch"] = json!("deploy/app");
    let tip = |branch: &str| server.git(&["rev-parse", branch]).trim().to_string();

    let first = out(&source, &digest(1)).json();
    assert_eq!(tip("main"), base);
    assert_eq!(tip("deploy/app~1"), base);
    assert_eq!(
        (metadata(&first, "branch"), metadata(&first, "base_branch")),
        ("deploy/app".into(), "main".into())
    );
    for (file, content) in expected(&digest(1)) {
        assert_eq!(
            server.git(&["show", &format!("deploy/app:{file}")]),
            content,
            "{file}"
        );
    }

    server.git(&["update-ref", "refs/heads/main", &tip("deploy/app")]);
    let moved = server.commit("main", &[("docs/notes.md", "later\n")], "unrelated");
    let second = out(&source, &digest(2)).json();
    assert_eq!(tip("deploy/app~1"), moved);
    assert_eq!(tip("deploy/app"), metadata(&second, "commit"));
    assert_eq!(tip("main"), moved);
    server.git(&["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn put_commits_the_digest_over_https_and_only_the_image_values_change() {
    commits_the_digest_and_only_the_image_values_change(&GitServer::start_tls());
}

#[test]
fn put_commits_the_digest_over_ssh_and_only_the_image_values_change() {
    commits_the_digest_and_only_the_image_values_change(&GitServer::start_ssh());
}

fn commits_the_digest_and_only_the_image_values_change(server: &GitServer) {
    let base = seed(server);
    let d = digest(1);
    let output = out(&source(server), &d).json();

    assert_eq!(output["version"], json!({"digest": d}));
    assert_pushed(server, &base, 1);
    let head = server.git(&["rev-parse", "main"]);
    assert_eq!(metadata(&output, "commit"), head.trim());
    assert_eq!(metadata(&output, "branch"), "main");
    assert_eq!(
        metadata(&output, "files"),
        "deploy/deployment.yaml, deploy/kustomization.yaml, deploy/nested/values.yml"
    );
    assert_eq!(
        metadata(&output, "previous_images"),
        format!("{REPO}:main, {REPO}:v1")
    );

    // Byte for byte: the files are the seed with only the image values replaced; nothing else in
    // the tree changed (README.md mentions the image but is not YAML; other/ is not under paths).
    for (file, content) in expected(&d) {
        assert_eq!(
            server.git(&["show", &format!("main:{file}")]),
            content,
            "{file}"
        );
    }
    let changed = server.git(&["diff", "--name-only", &base, "main"]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        [
            "deploy/deployment.yaml",
            "deploy/kustomization.yaml",
            "deploy/nested/values.yml"
        ]
    );
    let message = server.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with(&format!("deploy {REPO}@{d}\n")),
        "{message}"
    );
    let parent = server.git(&["rev-parse", "main~1"]);
    assert_eq!(parent.trim(), base);

    // Concourse may run the same put again: no second commit, still a success.
    let again = out(&source(server), &d).json();
    assert_pushed(server, &base, 1);
    assert!(metadata(&again, "commit").starts_with("none"), "{again}");
}

#[test]
fn a_commit_landing_between_fetch_and_push_is_kept_and_the_put_retries() {
    a_racing_commit_is_kept(&GitServer::start());
}

#[test]
fn over_ssh_a_racing_commit_is_kept_and_the_put_retries() {
    a_racing_commit_is_kept(&GitServer::start_ssh());
}

fn a_racing_commit_is_kept(server: &GitServer) {
    let base = seed(server);
    server.race_next_push(
        "main",
        &[("docs/CHANGELOG.md", "someone else's change\n")],
        "racing commit",
    );
    let d = digest(2);
    let result = out(&source(server), &d);
    result.json();

    assert!(server.raced(), "the racing commit was not pushed");
    assert!(result.stderr.contains("rejected"), "{}", result.stderr);
    assert_pushed(server, &base, 2);
    // Both commits are on the branch, ours on top of the other one: nothing was forced.
    let log = server.git(&["log", "--format=%s|%an <%ae>", &format!("{base}..main")]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            format!("deploy {REPO}@{d}|{AUTHOR}"),
            format!("racing commit|{SEED_AUTHOR}")
        ]
    );
    assert_eq!(
        server.git(&["show", "main:docs/CHANGELOG.md"]),
        "someone else's change\n"
    );
    for (file, content) in expected(&d) {
        assert_eq!(
            server.git(&["show", &format!("main:{file}")]),
            content,
            "{file}"
        );
    }
}

/// Each case fails with one line naming what to fix, and both branches are exactly as before.
#[test]
fn bad_credentials_branch_paths_and_yaml_fail_in_one_line_and_push_nothing() {
    let server = GitServer::start();
    seed(&server);
    server.commit("main", &[("docs/notes.txt", "no yaml here\n")], "docs");
    server.commit(
        "broken",
        &[
            ("deploy/deployment.yaml", DEPLOYMENT),
            (
                "deploy/bad.yaml",
                "spec:\n  containers: [\n    image: registry.example.test/team/app:v1\n  - oops\n",
            ),
        ],
        "broken yaml",
    );
    server.commit(
        "anchored",
        &[(
            "deploy/deployment.yaml",
            &DEPLOYMENT.replace("image: \"registry", "image: &app \"registry"),
        )],
        "an anchor on the image",
    );
    let branches = || server.git(&["rev-parse", "main", "broken", "anchored"]);
    let before = branches();
    let case = |edit: &Edit, expect: &[&str]| {
        let line = fails_in_one_line(&source(&server), edit, expect);
        assert_eq!(branches(), before, "{line}");
    };

    case(
        &|s| s["git"]["password"] = json!("wrong"),
        &[
            &server.url,
            "credentials refused (HTTP 401)",
            "source.git.password",
        ],
    );
    case(
        &|s| {
            s["git"].as_object_mut().unwrap().remove("password");
            s["git"].as_object_mut().unwrap().remove("username");
        },
        &[&server.url, "HTTP 401", "set source.git.username"],
    );
    case(
        &|s| s["git"]["branch"] = json!("production"),
        &[
            "branch `production` does not exist",
            "broken, main",
            "source.git.branch",
        ],
    );
    case(
        &|s| s["git"]["paths"] = json!(["deploy/", "manifests/"]),
        &["source.git.paths[1]: `manifests/` does not exist on branch main"],
    );
    case(
        &|s| s["git"]["paths"] = json!(["docs/"]),
        &[
            "source.git.paths",
            "no YAML file (*.yaml, *.yml) under docs/",
        ],
    );
    case(
        &|s| s["git"]["branch"] = json!("broken"),
        &[
            "deploy/bad.yaml: is not valid YAML",
            " line ",
            "nothing was pushed",
        ],
    );
    case(
        &|s| s["git"]["branch"] = json!("anchored"),
        &[
            "deploy/deployment.yaml: line 17: the image of registry.example.test/team/app is held by a YAML anchor or alias",
            "nothing was pushed",
        ],
    );
    case(
        &|s| s["repository"] = json!("registry.example.test/team/unrelated"),
        &[
            "no image of registry.example.test/team/unrelated in deploy/deployment.yaml, deploy/kustomization.yaml, deploy/nested/values.yml",
        ],
    );
}

/// A change to a [`source`].
type Edit<'a> = dyn Fn(&mut Value) + 'a;

#[test]
fn git_keys_are_checked_before_anything_is_fetched() {
    let server = GitServer::start();
    let cases: [(&Edit, &str); 5] = [
        (
            &|s| s["git"]["pasword"] = json!("x"),
            "source.git.pasword: unknown field `pasword`",
        ),
        (
            &|s| {
                s["git"].as_object_mut().unwrap().remove("insecure");
            },
            "source.git.uri: is plain http; use https",
        ),
        (
            &|s| s["git"]["private_key"] = json!("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "source.git.private_key: is for ssh URIs",
        ),
        (
            &|s| s["git"]["uri"] = json!(format!("http://u:{PASSWORD}@127.0.0.1:1/x.git")),
            "source.git.uri: contains credentials",
        ),
        (
            &|s| s["git"]["paths"] = json!([]),
            "source.git.paths: is empty",
        ),
    ];
    for (edit, expect) in cases {
        fails_in_one_line(&source(&server), edit, &[expect]);
    }
}

/// A put of `source` changed by `edit`: it fails with one line holding every part of `expect`.
fn fails_in_one_line(source: &Value, edit: &Edit, expect: &[&str]) -> String {
    let mut source = source.clone();
    edit(&mut source);
    let line = out(&source, &digest(3)).error_line();
    for part in expect {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }
    line
}

/// Deploy keys as people have them: RSA in PEM, ECDSA in both formats, an encrypted key with its
/// passphrase; each put pushes one commit.
#[test]
fn over_ssh_rsa_ecdsa_and_encrypted_keys_push() {
    let server = GitServer::start_ssh();
    let keys = server.ssh.as_ref().unwrap();
    let base = seed(&server);
    let kinds = ["rsa-pem", "ecdsa", "ecdsa-pem", "ed25519-encrypted"];
    for (n, kind) in kinds.into_iter().enumerate() {
        let mut source = source(&server);
        source["git"]["private_key"] = json!(keys.key(kind));
        if kind == "ed25519-encrypted" {
            source["git"]["private_key_passphrase"] = json!(PASSPHRASE);
        }
        let d = digest(10 + n as u8);
        let output = out(&source, &d).json();
        assert_eq!(output["version"], json!({"digest": d}), "{kind}");
        assert_pushed(&server, &base, n + 1);
    }
}

/// A key the server refuses, a read-only key, a host key that is not the listed one, a repository
/// that is not there: one line each, naming the server and what to fix, and the branch is
/// untouched.
#[test]
fn over_ssh_a_refused_key_a_changed_host_key_or_a_wrong_path_push_nothing() {
    let server = GitServer::start_ssh();
    let keys = server.ssh.as_ref().unwrap();
    let base = seed(&server);
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let host = format!("[127.0.0.1]:{port}");
    let case = |edit: &Edit, expect: &[&str]| {
        let line = fails_in_one_line(&source(&server), edit, expect);
        assert_eq!(server.git(&["rev-parse", "main"]).trim(), base, "{line}");
    };

    case(
        &|s| s["git"]["private_key"] = json!(keys.unauthorized),
        &[
            &format!("git {}: ", server.url),
            &format!("@{host} refused source.git.private_key (ssh-ed25519 SHA256:"),
            "deploy key with write access",
        ],
    );
    case(
        &|s| s["git"]["private_key"] = json!(keys.read_only),
        &[
            "git-receive-pack '",
            &format!(
                "failed (exit status 1): {READ_ONLY}; check source.git.uri and that the key may push"
            ),
        ],
    );
    case(
        &|s| s["git"]["known_hosts"] = json!(keys.wrong_known_hosts),
        &[
            &format!("HOST KEY MISMATCH for {host}: it presented ssh-ed25519 SHA256:"),
            "source.git.known_hosts lists ssh-ed25519 SHA256:",
            "refusing to connect",
        ],
    );
    case(
        &|s| {
            let uri = server
                .url
                .replace("/repos/config.git", "/repos/missing.git");
            s["git"]["uri"] = json!(uri);
        },
        &[
            "git-upload-pack '",
            "/repos/missing.git' on ",
            "does not appear to be a git repository",
            "check source.git.uri",
        ],
    );
}

/// A repository that moved (a 301 for every request to the old URL, as GitHub answers for a
/// renamed one) is pushed to at its new place, as git does: the POSTs go where `info/refs` was
/// redirected to. Following the POST's own 301 would turn it into a GET, and the push would fail.
#[test]
fn over_https_a_moved_repository_is_pushed_at_its_new_url() {
    let server = GitServer::start();
    let base = seed(&server);
    let mut source = source(&server);
    source["git"]["uri"] = json!(server.url.replace("/git/", "/moved/"));
    let result = out(&source, &digest(8));
    assert!(result.ok(), "{result:?}");
    assert!(
        result.stderr.contains(&format!("moved to {}", server.url)),
        "{}",
        result.stderr
    );
    assert_pushed(&server, &base, 1);
}

/// git percent-decodes an ssh:// URI's path before asking the server for it; so does the put:
/// the repository at `repos/config copy.git` is written `repos/config%20copy.git`.
#[test]
fn over_ssh_a_percent_encoded_path_names_the_repository_git_would() {
    let server = GitServer::start_ssh();
    let base = seed(&server);
    std::os::unix::fs::symlink(
        server.bare(),
        server.bare().with_file_name("config copy.git"),
    )
    .unwrap();
    let mut source = source(&server);
    let uri = server
        .url
        .replace("/repos/config.git", "/repos/config%20copy.git");
    source["git"]["uri"] = json!(uri);
    let result = out(&source, &digest(7));
    assert!(result.ok(), "{result:?}");
    assert_pushed(&server, &base, 1);
}

/// How known_hosts names the loopback server on `port`.
fn listed(port: &str) -> String {
    format!("[127.0.0.1]:{port} ")
}

/// The ssh keys are checked before anything connects: the URI points at a port where nothing
/// listens, so each error here comes from the configuration alone.
#[test]
fn ssh_keys_are_checked_before_anything_connects() {
    let server = GitServer::start_ssh();
    let keys = server.ssh.as_ref().unwrap();
    let closed = testbed::registry::free_port().port();
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let cases: [(&Edit, &str); 9] = [
        (
            &|s| s["git"]["private_keys"] = json!("x"),
            "source.git.private_keys: unknown field `private_keys`",
        ),
        (
            &|s| {
                s["git"].as_object_mut().unwrap().remove("known_hosts");
            },
            &format!(
                "source.git.known_hosts: is required with an ssh URI, so that the server is verified: add the output of `ssh-keyscan -p {closed} 127.0.0.1`"
            ),
        ),
        (
            &|s| {
                let elsewhere = keys.known_hosts.replace(&listed(port), "[127.0.0.1]:1 ");
                s["git"]["known_hosts"] = json!(elsewhere);
            },
            &format!("source.git.known_hosts: has no key for [127.0.0.1]:{closed}"),
        ),
        (
            &|s| s["git"]["known_hosts"] = json!("127.0.0.1 ssh-ed25519"),
            "source.git.known_hosts: line 1: is not `host keytype key`",
        ),
        (
            &|s| {
                s["git"].as_object_mut().unwrap().remove("private_key");
            },
            "source.git.private_key: is required with an ssh URI",
        ),
        (
            &|s| s["git"]["private_key"] = json!("not a key"),
            "source.git.private_key: is not a private key this resource can read",
        ),
        (
            &|s| s["git"]["private_key"] = json!(keys.key("ed25519-encrypted")),
            "source.git.private_key_passphrase: is required: source.git.private_key is encrypted",
        ),
        (
            &|s| {
                s["git"]["private_key"] = json!(keys.key("ed25519-encrypted"));
                s["git"]["private_key_passphrase"] = json!("wrong");
            },
            "source.git.private_key_passphrase: does not decrypt source.git.private_key",
        ),
        (
            &|s| s["git"]["insecure"] = json!(true),
            "source.git.insecure: is for https; an ssh URI",
        ),
    ];
    let mut unreachable = source(&server);
    let uri = server
        .url
        .replace(&format!(":{port}/"), &format!(":{closed}/"));
    unreachable["git"]["uri"] = json!(uri);
    let known_hosts = keys
        .known_hosts
        .replace(&listed(port), &listed(&closed.to_string()));
    unreachable["git"]["known_hosts"] = json!(known_hosts);
    for (edit, expect) in cases {
        fails_in_one_line(&unreachable, edit, &[expect]);
    }
}

/// The seed's web Deployment (the first document of [`DEPLOYMENT`]) in a fresh namespace, as the
/// agent would have applied it, and a token of `pipeline/rbac-readonly.yaml`'s identity, its Role
/// edited by `edit` (`from` → `to`) when given. Returns the namespace and the token.
fn cluster_web(cp: &ControlPlane, prefix: &str, edit: Option<(&str, &str)>) -> (String, String) {
    let ns = cp.namespace(prefix);
    let web = DEPLOYMENT.split("\n---\n").next().unwrap();
    cp.apply(&ns, web);
    let mut rbac = include_str!("../pipeline/rbac-readonly.yaml").to_string();
    if let Some((from, to)) = edit {
        assert!(
            rbac.contains(from),
            "rbac-readonly.yaml changed: {from:?} not found"
        );
        rbac = rbac.replace(from, to);
    }
    cp.apply(&ns, &rbac);
    let token = cp.service_account_token(&ns, "image-rollout-readonly");
    (ns, token)
}

/// [`source`] with the cluster keys of `cluster_web`: `out` waits for deployment/web.
fn source_with_cluster(server: &GitServer, cp: &ControlPlane, ns: &str, token: &str) -> Value {
    let mut source = source(server);
    for (key, value) in [
        ("namespace", json!(ns)),
        ("deployment", json!("web")),
        ("server", json!(cp.server())),
        ("token", json!(token)),
        ("certificate_authority", json!(cp.ca_pem())),
    ] {
        source[key] = value;
    }
    source
}

/// Before pushing, `out` asks the API server what its identity may do: the shipped read-only Role
/// minus one verb fails at once, naming the verb and the Role, and the branch stays as it was.
/// (Without the review, a missing watch would show only after the push.)
#[test]
fn a_read_only_role_missing_a_verb_is_named_before_anything_is_pushed() {
    let cp = ControlPlane::shared();
    let server = GitServer::start();
    let base = seed(&server);
    let workloads = r#"verbs: ["get", "list", "watch"]"#;
    let cases = [
        (
            (workloads, r#"verbs: ["list", "watch"]"#),
            "get deployments.apps/web",
        ),
        (
            (workloads, r#"verbs: ["get", "list"]"#),
            "watch deployments.apps/web",
        ),
        (
            (r#"verbs: ["list", "watch"]"#, r#"verbs: ["list"]"#),
            "watch pods",
        ),
    ];
    for (edit, missing) in cases {
        let (ns, token) = cluster_web(cp, "gitops-rbac", Some(edit));
        let started = Instant::now();
        let result = out(&source_with_cluster(&server, cp, &ns, &token), &digest(5));
        let line = result.error_line();
        assert!(
            line.contains(&format!(
                "system:serviceaccount:{ns}:image-rollout-readonly may not {missing} in namespace {ns}; nothing was pushed"
            )) && line.contains("pipeline/rbac-readonly.yaml"),
            "{line}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}: {line}",
            started.elapsed()
        );
        result.assert_never_prints(&token);
        assert_eq!(server.git(&["rev-parse", "main"]).trim(), base, "{line}");
    }
}

/// Starts a put of build `n` with the cluster keys of [`cluster_web`] and `params`, and returns it
/// once it has pushed and waits for the agent (none runs here, so the wait cannot end by itself),
/// with the commit it pushed.
fn put_waiting(
    server: &GitServer,
    prefix: &str,
    n: u8,
    params: Value,
) -> (Running, String, tempfile::TempDir) {
    let cp = ControlPlane::shared();
    let (ns, token) = cluster_web(cp, prefix, None);
    let mut params = params;
    params["digest"] = json!(digest(n));
    params["timeout"] = json!("5m");
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source_with_cluster(server, cp, &ns, &token), "params": params});
    let mut running = Running::start(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]);
    running.wait_for_line("deployment/web: waiting for the pod template to run ");
    let pushed = server.git(&["rev-parse", "main"]).trim().to_string();
    (running, pushed, dir)
}

/// An abort that arrives before the push (here while the put fetches the branch: the Git server
/// itself sends the SIGTERM as the fetch starts) stops the put there: nothing is pushed, so
/// nothing is reverted, and the one line says so.
#[test]
fn sigterm_before_the_push_pushes_nothing() {
    let server = GitServer::start();
    let base = seed(&server);
    let cp = ControlPlane::shared();
    let (ns, token) = cluster_web(cp, "gitops-sigterm-fetch", None);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("put.pid");
    server.on_next_fetch(&format!(
        "while [ ! -s {0} ]; do sleep 0.01; done; kill -TERM \"$(cat {0})\"\n",
        pid_file.display()
    ));
    let request = json!({
        "source": source_with_cluster(&server, cp, &ns, &token),
        "params": {"digest": digest(7), "timeout": "5m"},
    });
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let running = Running::start(env!("CARGO_BIN_EXE_out"), Some(&work), &request, &[]);
    std::fs::write(&pid_file, running.pid().to_string()).unwrap();
    let started = std::time::Instant::now();
    let result = running.finish();
    println!("put to exit: {:?}", started.elapsed());
    result.assert_never_prints(PASSWORD);
    assert!(!result.ok());
    assert_eq!(
        result.error_line(),
        "error: aborted by SIGTERM before pushing; nothing was pushed"
    );
    assert_eq!(server.git(&["rev-parse", "main"]).trim(), base);
}

/// Concourse aborts a step (`fly abort-build`, a step `timeout:`) with SIGTERM, and SIGKILL 10 s
/// later. Mid-wait, `out` pushes the revert of its commit at once — the agent must not go on
/// applying a put that was stopped — says so in one line, and exits.
#[test]
fn sigterm_mid_wait_pushes_the_revert_and_exits_at_once() {
    let server = GitServer::start();
    let base = seed(&server);
    let d = digest(6);
    let (running, pushed, _dir) = put_waiting(&server, "gitops-sigterm", 6, json!({}));
    assert_ne!(pushed, base);
    for (file, content) in expected(&d) {
        assert_eq!(server.git(&["show", &format!("{pushed}:{file}")]), content);
    }

    let (result, elapsed) = running.stop(SIGTERM);
    result.assert_never_prints(PASSWORD);
    let line = result.error_line();
    println!("SIGTERM to exit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {line}");
    assert!(
        line.contains(
            "deployment/web: aborted by SIGTERM while waiting (waiting for the pod template to run "
        ) && line.contains(&format!("reverted {pushed} on main with "))
            && line.contains("(the agent's rollout of it not awaited: aborted by SIGTERM)"),
        "{line}"
    );

    // The real git's verdict: the deploy commit and its revert, both by the configured author;
    // the revert undoes exactly the image values, so the tree is the seed's again.
    assert_pushed(&server, &base, 2);
    let revert = server.git(&["rev-parse", "main"]);
    assert!(line.contains(revert.trim()), "{line}");
    assert_eq!(server.git(&["rev-parse", "main~1"]).trim(), pushed);
    let message = server.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with(&format!("revert {pushed}\n\nThe put was aborted: ")),
        "{message}"
    );
    assert_eq!(
        server.git(&["rev-parse", "main^{tree}"]),
        server.git(&["rev-parse", &format!("{base}^{{tree}}")])
    );
    let diff = server.git(&["diff", "--unified=0", &pushed, "main"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(changed.len(), 2 * 5, "{diff}");
    for line in changed {
        assert!(
            line.contains(&format!("image: {REPO}@{d}"))
                || line.contains(&format!("image: {REPO}:"))
                || line.contains(&format!("image: \"{REPO}"))
                || line.contains(&format!("digest: {d}"))
                || line.contains("newTag: v1   # CI pins this"),
            "not an image value: {line:?}\n{diff}"
        );
    }
}

/// Without `rollback_on_failure`, an abort just stops: the commit stays, nothing else is pushed.
#[test]
fn sigint_without_rollback_stops_and_leaves_the_commit() {
    let server = GitServer::start();
    let base = seed(&server);
    let (running, pushed, _dir) = put_waiting(
        &server,
        "gitops-sigint",
        7,
        json!({"rollback_on_failure": false}),
    );
    let (result, elapsed) = running.stop(SIGINT);
    let line = result.error_line();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {line}");
    assert!(
        line.contains("deployment/web: aborted by SIGINT while waiting")
            && line.contains(&format!(
                "left as is (rollback_on_failure: false): {pushed} stays on main"
            )),
        "{line}"
    );
    assert_pushed(&server, &base, 1);
    assert_eq!(server.git(&["rev-parse", "main"]).trim(), pushed);
}
