//! The GitHub Action (`action.yml`), run as the runner runs a Docker action: the image's own
//! binary (the static build `tests/image.rs` checks) started as `resource action` with exactly
//! the environment a runner sets (`testbed::action`), against the real Git servers of
//! `tests/gitops.rs` (git http-backend behind lighttpd with TLS, OpenSSH running git-shell),
//! checked by the real `git`. The config repository holds a Helm chart in the shapes widely used
//! charts have (`testbed::charts`), a template that is not YAML among them.
//!
//! Flux applying the action's commit, and the action's read-only wait and revert, are in
//! `tests/flux.rs`. A local runner (nektos/act) would need a Docker engine, which this machine
//! does not have; the runner's side here is the environment it documents for Docker actions.

use std::path::PathBuf;

use testbed::action::{self, ActionRun, REPOSITORY, RUN_ID};
use testbed::charts::{self, REPO, TAG};
use testbed::git::{GitServer, PASSWORD, USER};

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn binary() -> PathBuf {
    testbed::image::release_dir().join(testbed::image::BINARY)
}

fn seed(server: &GitServer) -> String {
    let files = charts::files();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    server.commit("main", &files, "seed")
}

/// `https://127.0.0.1:PORT`: the server as `GITHUB_SERVER_URL` names a GitHub instance.
fn base_url(server: &GitServer) -> String {
    let rest = server.url.split_once("://").unwrap().1;
    let host = rest.split('/').next().unwrap();
    format!("{}://{host}", server.url.split_once("://").unwrap().0)
}

/// The inputs for `server`: https with the user and token, or ssh with the deploy key.
fn inputs(server: &GitServer, image: &str) -> Inputs {
    let mut inputs = vec![
        ("image", image.to_string()),
        ("uri", server.url.clone()),
        ("paths", format!("{}/\n", charts::DIR)),
        ("author-name", "github-actions[bot]".into()),
        ("author-email", "bot@example.test".into()),
    ];
    match (&server.ca_pem, &server.ssh) {
        (_, Some(ssh)) => {
            inputs.push(("private-key", ssh.key("ed25519").to_string()));
            inputs.push(("known-hosts", ssh.known_hosts.clone()));
        }
        (Some(ca), None) => inputs.push(("ca-certs", ca.clone())),
        (None, None) => inputs.push(("insecure", "true".into())),
    }
    if server.ssh.is_none() {
        inputs.push(("username", USER.into()));
        inputs.push(("token", PASSWORD.into()));
    }
    inputs
}

fn run(server: &GitServer, inputs: &Inputs) -> ActionRun {
    let inputs: Vec<(&str, &str)> = inputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = action::run(&binary(), &inputs, &base_url(server));
    run.assert_never_prints(PASSWORD);
    if let Some(ssh) = &server.ssh {
        for line in ssh
            .key("ed25519")
            .lines()
            .filter(|l| !l.starts_with("-----"))
        {
            run.assert_never_prints(line);
        }
    }
    run
}

/// Inputs as `action.yml` names them, with their values.
type Inputs = Vec<(&'static str, String)>;

fn with(mut inputs: Inputs, name: &'static str, value: &str) -> Inputs {
    inputs.retain(|(k, _)| *k != name);
    inputs.push((name, value.to_string()));
    inputs
}

#[test]
fn over_https_the_action_commits_the_digest_and_writes_outputs_and_a_summary() {
    let server = GitServer::start_tls();
    let base = seed(&server);
    let d = digest(1);
    let run = run(&server, &inputs(&server, &format!("{REPO}:{TAG}@{d}")));

    let head = server.git(&["rev-parse", "main"]).trim().to_string();
    assert_eq!(run.output("commit"), head);
    assert_eq!(run.output("changed"), "true");
    assert_eq!(run.output("files"), charts::changed().join(", "));
    assert_eq!(run.output("previous-images"), charts::previous());
    assert_eq!(run.output("branch"), "main");
    assert_eq!(run.output("image"), format!("{REPO}@{d}"));
    server.git(&["fsck", "--strict", "--no-dangling"]);
    assert_eq!(server.git(&["rev-parse", "main~1"]).trim(), base);
    charts::assert_deployed(&server, "main", &d);
    let changed = server.git(&["diff", "--name-only", &base, "main"]);
    assert_eq!(changed.lines().collect::<Vec<_>>(), charts::changed());

    // The commit links back to the run; the summary links to the commit.
    let message = server.git(&["log", "-1", "--format=%an <%ae>|%B", "main"]);
    let run_url = format!("{}/{REPOSITORY}/actions/runs/{RUN_ID}", base_url(&server));
    assert!(
        message.starts_with(&format!(
            "github-actions[bot] <bot@example.test>|deploy {REPO}@{d} ({TAG})\n"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("by {REPOSITORY} run {RUN_ID} {run_url}")),
        "{message}"
    );
    let path = server
        .url
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    let link = format!(
        "[`{}`]({}/{}/commit/{head})",
        &head[..12],
        base_url(&server),
        path.trim_end_matches(".git")
    );
    assert!(
        run.summary.contains(&link),
        "{link} not in\n{}",
        run.summary
    );
    assert!(
        run.summary.contains(&format!("### Deployed `{REPO}@{d}`")),
        "{}",
        run.summary
    );
    let group = run
        .stderr
        .lines()
        .position(|l| l == "::group::image-rollout");
    let end = run.stderr.lines().position(|l| l == "::endgroup::");
    assert!(group.is_some() && group < end, "{}", run.stderr);

    // The workflow re-run: nothing to commit, still a success.
    let again = self::run(&server, &inputs(&server, &format!("{REPO}:{TAG}@{d}")));
    assert_eq!(
        (again.output("changed"), again.output("commit")),
        ("false", "")
    );
    assert_eq!(server.git(&["rev-parse", "main"]).trim(), head);
    assert!(
        again.summary.contains("is already deployed"),
        "{}",
        again.summary
    );
}

/// Over ssh with a deploy key, while someone else pushes between the action's fetch and its
/// push: the other commit is kept, the action's goes on top.
#[test]
fn over_ssh_with_a_racing_commit_the_action_retries_and_keeps_it() {
    let server = GitServer::start_ssh();
    let base = seed(&server);
    server.race_next_push(
        "main",
        &[("docs/CHANGELOG.md", "someone else's change\n")],
        "racing commit",
    );
    let d = digest(2);
    // repository + digest, as docker/build-push-action outputs them, and the tag on its own.
    let mut inputs: Vec<_> = inputs(&server, "")
        .into_iter()
        .filter(|(k, _)| *k != "image")
        .collect();
    inputs.extend([
        ("repository", REPO.to_string()),
        ("digest", d.clone()),
        ("tag", TAG.into()),
    ]);
    let run = run(&server, &inputs);

    assert_eq!(run.output("changed"), "true");
    assert!(server.raced(), "the racing commit was not pushed");
    assert!(run.stderr.contains("rejected"), "{}", run.stderr);
    server.git(&["fsck", "--strict", "--no-dangling"]);
    let log = server.git(&["log", "--format=%s", &format!("{base}..main")]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [format!("deploy {REPO}@{d} ({TAG})"), "racing commit".into()]
    );
    charts::assert_deployed(&server, "main", &d);
}

/// `push-branch`: a protected `main` is left alone; the branch is created, then each deploy is a
/// fast-forward of it — stacked while its pull request is open, on `main` once it is merged —
/// and one that has diverged from `main` is refused.
#[test]
fn push_branch_is_created_fast_forwarded_and_never_forced() {
    let server = GitServer::start();
    let base = seed(&server);
    let deploy = |n: u8| {
        let inputs = with(
            inputs(&server, &format!("{REPO}:{TAG}@{}", digest(n))),
            "push-branch",
            "deploy/app",
        );
        run(&server, &inputs)
    };
    let tip = |branch: &str| server.git(&["rev-parse", branch]).trim().to_string();

    let first = deploy(1);
    assert_eq!(first.output("branch"), "deploy/app");
    assert_eq!(tip("main"), base, "main moved");
    assert_eq!(tip("deploy/app~1"), base);
    charts::assert_deployed(&server, "deploy/app", &digest(1));

    // The pull request is still open: the next deploy goes on top of it.
    let second = deploy(2);
    assert_eq!(tip("deploy/app~1"), first.output("commit"));
    charts::assert_deployed(&server, "deploy/app", &digest(2));

    // Merged (fast-forward), and main moves on: the next deploy is on main's tip.
    server.git(&["update-ref", "refs/heads/main", second.output("commit")]);
    let moved = server.commit("main", &[("docs/notes.md", "later\n")], "unrelated");
    let third = deploy(3);
    assert_eq!(tip("deploy/app~1"), moved);
    assert_eq!(tip("deploy/app"), third.output("commit"));
    server.git(&["fsck", "--strict", "--no-dangling"]);

    // Squash-merged: main has the change as another commit, and the branch has diverged.
    let squashed = charts::expected(&digest(3));
    let squashed: Vec<(&str, &str)> = squashed
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    server.commit("main", &squashed, "squashed deploy");
    let before = server.git(&["rev-parse", "main", "deploy/app"]);
    let refused = deploy(4).error();
    for part in [
        "push_branch `deploy/app` has commits that `main` lacks",
        "nothing was pushed",
        "delete `deploy/app`",
    ] {
        assert!(refused.contains(part), "{part:?} not in {refused}");
    }
    assert_eq!(server.git(&["rev-parse", "main", "deploy/app"]), before);
}

/// Bad inputs fail in one `::error` line naming the input (as the put names its key), and
/// nothing is pushed.
#[test]
fn bad_inputs_fail_in_one_error_line_naming_the_input() {
    let server = GitServer::start_tls();
    seed(&server);
    server.commit(
        "anchored",
        &[(
            "chart/values.yaml",
            &format!("x-image: &app {REPO}:v1\nweb:\n  image: *app\n"),
        )],
        "anchors",
    );
    let good = inputs(&server, &format!("{REPO}:{TAG}@{}", digest(5)));
    let before = server.git(&["rev-parse", "main", "anchored"]);
    let cases: Vec<(Inputs, &[&str])> = vec![
        (
            with(good.clone(), "push_branch", "x"),
            &["unknown input `push_branch`", "push-branch"],
        ),
        (
            good.iter().filter(|(k, _)| *k != "uri").cloned().collect(),
            &["input uri: missing"],
        ),
        (
            with(good.clone(), "insecure", "yes"),
            &["input insecure: `yes` is not a boolean"],
        ),
        (
            with(good.clone(), "token", "wrong"),
            &["credentials refused (HTTP 401)", "input token"],
        ),
        (
            with(good.clone(), "image", REPO),
            &["input image", "has no digest"],
        ),
        (
            with(good.clone(), "repository", REPO),
            &["set either image or repository and digest"],
        ),
        (
            with(good.clone(), "private-key", "x"),
            &["input private-key: is for ssh URIs"],
        ),
        (
            with(good.clone(), "timeout", "soon"),
            &["input timeout", "is not a duration"],
        ),
        (
            with(good.clone(), "push-branch", "main"),
            &["input push-branch: is the same as branch"],
        ),
        (
            with(good.clone(), "branch", "anchored"),
            &[
                "chart/values.yaml: line 3:",
                "anchor or alias",
                "nothing was pushed",
            ],
        ),
    ];
    for (inputs, expect) in cases {
        let error = run(&server, &inputs).error();
        for part in expect {
            assert!(error.contains(part), "{part:?} not in {error}");
        }
        assert!(!error.contains("source."), "a put key in {error}");
        assert_eq!(
            server.git(&["rev-parse", "main", "anchored"]),
            before,
            "{error}"
        );
    }
}
