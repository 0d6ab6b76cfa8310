//! The shipped pipeline under a real Concourse, as a user runs it: `fly set-pipeline` of
//! `pipeline/deploy.yml` with a vars file, the resource image built from the `Dockerfile` and
//! pulled by Concourse's `registry-image` type, the `run:` script of
//! `pipeline/github-actions-step.yml` POSTing the webhook, and the `deploy` job Concourse starts.
//!
//! One Concourse, one control plane and one pipeline for the whole file: the scenarios run in
//! sequence against them, in one test, so that the Concourse guard stops everything (`down.sh`)
//! however the test ends. Needs the Concourse bundle (`IRR_CONCOURSE_BUNDLE`, see
//! `testbed::concourse`); without it the test says it skipped, except under `CI=true`.

use std::process::Output;
use std::time::{Duration, Instant};

use testbed::cluster::{CRASH_MESSAGE, PodFailure};
use testbed::concourse::Bundle;
use testbed::concourse::rig::{JOB, PIPELINE, RESOURCE, Rig, TAG};

const BUILD_TIMEOUT: Duration = Duration::from_secs(120);
/// The second pipeline: deploy.yml following releases.
const RELEASES: &str = "releases";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Everything users see, kept to check at the end that no secret is in any of it.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, out: &Output) -> String {
        let t = text(out);
        self.0.push(t.clone());
        t
    }
}

#[test]
fn the_shipped_pipeline_deploys_under_a_real_concourse() {
    let Some(bundle) =
        Bundle::find("the end-to-end test under a real Concourse (tests/concourse.rs)")
    else {
        return;
    };
    let started = Instant::now();
    let rig = Rig::start(&bundle, &[]);
    eprintln!("e2e: set up in {:.1?}", started.elapsed());
    let mut seen = Seen::default();

    let v1 = deploys_on_the_webhook(&rig, &mut seen);
    eprintln!("e2e: 1 done at {:.1?}", started.elapsed());
    a_crashing_build_fails_the_job_and_rolls_back(&rig, &mut seen, &v1);
    eprintln!("e2e: 2 done at {:.1?}", started.elapsed());
    the_webhook_refuses_a_wrong_token_and_name(&rig, &mut seen);
    eprintln!("e2e: 3 done at {:.1?}", started.elapsed());
    two_pushes_deploy_in_order_one_at_a_time(&rig, &mut seen);
    eprintln!("e2e: 4 done at {:.1?}", started.elapsed());
    a_wrong_registry_password_fails_the_check_clearly(&rig, &mut seen);
    eprintln!("e2e: 5 done at {:.1?}", started.elapsed());
    an_aborted_build_restores_the_previous_digest(&rig, &mut seen);
    eprintln!("e2e: abort done at {:.1?}", started.elapsed());
    releases_deploy_and_pre_releases_do_not(&rig, &mut seen);
    eprintln!("e2e: releases done at {:.1?}", started.elapsed());
    the_pipeline_deploys_as_its_own_user(&rig);
    another_pipeline_s_token_is_refused_before_anything_changes(&rig, &mut seen);
    a_token_for_another_audience_is_refused_in_one_line(&rig, &mut seen);
    the_gitops_wait_runs_as_its_pipeline_s_read_only_user(&rig, &mut seen);
    eprintln!("e2e: ID tokens done at {:.1?}", started.elapsed());
    a_token_that_expires_mid_rollout_names_expires_in(&rig, &mut seen);
    eprintln!("e2e: expiry done at {:.1?}", started.elapsed());

    // No var holds a Kubernetes credential: the deploys authenticate with ID tokens, and no
    // output shows one (a JWT's header starts `eyJ`) or another secret.
    for secret in [
        rig.var("registry_password"),
        rig.var("webhook_token"),
        rig.service_account_token.as_str(),
        "eyJ",
    ] {
        for output in &seen.0 {
            assert!(!output.contains(secret), "a secret in: {output}");
        }
    }
}

/// 1. The webhook answers 201, the check finds the digest, `deploy` starts by itself and succeeds,
///    and the Deployment runs `repository@digest`, its change-cause linking the build.
fn deploys_on_the_webhook(rig: &Rig, seen: &mut Seen) -> String {
    let v1 = rig.push_app("v1");
    let out = rig.actions_step(rig.var("webhook_token"));
    let body = seen.keep(&out);
    assert!(out.status.success(), "the Actions step failed: {body}");
    // The body of the 201: the check build the webhook created.
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON body");
    assert_eq!(check["name"], "check", "{body}");
    assert_eq!(check["resource_name"], RESOURCE, "{body}");

    let build = rig.finished_build(1, BUILD_TIMEOUT);
    let log = seen.keep(&rig.watch(1));
    assert_eq!(build.status, "succeeded", "{log}");
    assert_eq!(rig.versions().first(), Some(&v1), "the check found v1");
    let pinned = format!("{}@{v1}", rig.repository);
    assert_eq!(rig.deployed_image(), pinned);
    assert_eq!(
        rig.deployment("{.metadata.annotations.kubernetes\\.io/change-cause}"),
        format!(
            "image-rollout {pinned} ({TAG}) by {PIPELINE}/{JOB} #1 {}/teams/main/pipelines/{PIPELINE}/jobs/{JOB}/builds/1",
            rig.external_url
        )
    );
    // The put's progress lines, then the put's metadata and the implicit get of its version, as
    // the ATC records them.
    let resources = rig.concourse.api(&format!("builds/{}/resources", build.id));
    assert_eq!(
        resources["outputs"][0]["version"]["digest"], v1,
        "{resources}"
    );
    // The ATC's events for the job's own steps (the resource type's image check and get have
    // origins of their own): the put's metadata, and the implicit get of the put's version.
    let events: Vec<_> = rig
        .concourse
        .events(build.id)
        .into_iter()
        .filter(|e| {
            !e["data"]["origin"]["id"]
                .as_str()
                .unwrap_or("/")
                .contains('/')
        })
        .collect();
    let put = events
        .iter()
        .find(|e| e["event"] == "finish-put")
        .expect("a finish-put event");
    let metadata = put["data"]["metadata"].to_string();
    for field in [
        "namespace",
        "workloads",
        "previous_image",
        "image",
        "duration",
    ] {
        assert!(metadata.contains(field), "{field} missing: {metadata}");
    }
    assert!(metadata.contains(&pinned), "{metadata}");
    let gets: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "finish-get")
        .map(|e| e["data"]["version"]["digest"].clone())
        .collect();
    assert_eq!(
        gets,
        [v1.as_str(), v1.as_str()],
        "the get, and the implicit get after the put"
    );
    // In fly watch: the get fetched it; the implicit get after the put found that fetch's cache.
    let (before_put, after_put) = log
        .split_once("rollout complete")
        .unwrap_or_else(|| panic!("no completion in:\n{log}"));
    assert!(before_put.contains(&format!("fetched {pinned}")), "{log}");
    assert!(after_put.contains("found existing resource cache"), "{log}");
    v1
}

/// 2. A build that crashes on start: the job fails with the pod's reason, the Deployment is back
///    on the previous digest.
fn a_crashing_build_fails_the_job_and_rolls_back(rig: &Rig, seen: &mut Seen, v1: &str) {
    let v2 = rig.push_app("v2-crashes");
    rig.cluster
        .fail_images(&format!("{}@{v2}", rig.repository), PodFailure::CrashLoop);
    let out = rig.actions_step(rig.var("webhook_token"));
    assert!(out.status.success(), "{}", seen.keep(&out));
    let build = rig.finished_build(2, BUILD_TIMEOUT);
    let watch = rig.watch(2);
    let log = seen.keep(&watch);
    assert_eq!(build.status, "failed", "{log}");
    assert!(!watch.status.success(), "fly watch exits non-zero");
    for expected in ["CrashLoopBackOff", CRASH_MESSAGE, "rolled back"] {
        assert!(log.contains(expected), "{expected:?} missing in:\n{log}");
    }
    assert_eq!(rig.deployed_image(), format!("{}@{v1}", rig.repository));
}

/// 3. A wrong webhook token: 401, no check, no build. A wrong resource name: 404.
fn the_webhook_refuses_a_wrong_token_and_name(rig: &Rig, seen: &mut Seen) {
    let newest_check = newest_stored_check(rig);
    let builds_before = rig.builds().len();
    let out = rig.actions_step("not-the-token");
    let log = seen.keep(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("returned error: 401"), "{log}");
    // Two scheduler periods: a check or build the POST caused would exist by now.
    std::thread::sleep(Duration::from_secs(3));
    assert!(newest_stored_check(rig) <= newest_check, "no check");
    assert_eq!(rig.builds().len(), builds_before, "no build");

    let url = format!(
        "{}/api/v1/teams/main/pipelines/{PIPELINE}/resources/no-such-resource/check/webhook?webhook_token={}",
        rig.concourse.url(),
        rig.var("webhook_token")
    );
    assert_eq!(rig.concourse.post(&url).0, 404);
}

/// 4. Two pushes in quick succession: the serial job deploys both, in order, one after the other,
///    and ends on the newest.
fn two_pushes_deploy_in_order_one_at_a_time(rig: &Rig, seen: &mut Seen) {
    // Slow rollouts (each new pod counts as available 3 s after it is ready), so that the second
    // push surely arrives while the first rollout runs; `out` patches only images, so this stays.
    min_ready_seconds(rig, 3);
    let v3 = rig.push_app("v3");
    assert!(rig.actions_step(rig.var("webhook_token")).status.success());
    // The second push lands while the first rollout runs.
    rig.concourse
        .wait_for("build 3 running", BUILD_TIMEOUT, || {
            rig.builds()
                .iter()
                .any(|b| b.name == "3" && b.status == "started")
                .then_some(())
        });
    let v4 = rig.push_app("v4");
    assert!(rig.actions_step(rig.var("webhook_token")).status.success());
    rig.concourse
        .wait_for("the check found v4", BUILD_TIMEOUT, || {
            (rig.versions().first() == Some(&v4)).then_some(())
        });
    let third = rig.builds().into_iter().find(|b| b.name == "3");
    assert!(
        third.is_some_and(|b| !b.finished()),
        "v4 was found after build 3 ended: nothing tested the serial job"
    );

    let third = rig.finished_build(3, BUILD_TIMEOUT);
    let fourth = rig.finished_build(4, BUILD_TIMEOUT);
    let log = seen.keep(&rig.watch(3));
    // The rollout's progress lines (slow enough here to show some).
    assert!(log.contains("/2 updated, "), "no progress line in:\n{log}");
    seen.keep(&rig.watch(4));
    assert_eq!(
        (third.status.as_str(), fourth.status.as_str()),
        ("succeeded", "succeeded")
    );
    assert!(
        fourth.start >= third.end,
        "two rollouts at once: {third:?} {fourth:?}"
    );
    assert_eq!(rig.deployed_image(), format!("{}@{v4}", rig.repository));
    let history = rig.cluster.kubectl_ok(&[
        "-n",
        &rig.namespace,
        "rollout",
        "history",
        &format!("deploy/{}", testbed::concourse::rig::APP),
    ]);
    let at = |v: &str| {
        history
            .find(&format!("@{v} ({TAG}) by"))
            .unwrap_or(usize::MAX)
    };
    assert!(at(&v3) < at(&v4) && at(&v4) != usize::MAX, "{history}");
    min_ready_seconds(rig, 0);
}

fn min_ready_seconds(rig: &Rig, seconds: u32) {
    rig.cluster.kubectl_ok(&[
        "-n",
        &rig.namespace,
        "patch",
        "deployment",
        testbed::concourse::rig::APP,
        "-p",
        &format!("{{\"spec\":{{\"minReadySeconds\":{seconds}}}}}"),
    ]);
}

/// 5. The app's registry is private (every scenario above pulled with `username`/`password`); with
///    a wrong password the check fails with the clear error, and shows no secret.
fn a_wrong_registry_password_fails_the_check_clearly(rig: &Rig, seen: &mut Seen) {
    let wrong = "wrong-password-7f3a9c";
    rig.set_pipeline(&[("registry_password", wrong)]);
    let check = ["check-resource", "-r", &format!("{PIPELINE}/{RESOURCE}")];
    let out = rig.concourse.fly(&check);
    let log = seen.keep(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("credentials refused") && log.contains("source.password"),
        "{log}"
    );
    assert!(!log.contains(wrong), "{log}");

    rig.set_pipeline(&[]);
    let out = rig.concourse.fly(&check);
    assert!(out.status.success(), "{}", seen.keep(&out));

    // Concourse runs a resource's checks in one container (for 5 minutes to an hour): the next
    // check answers the registry's Basic challenge before it is asked, in one request.
    rig.apps.reset_requests();
    let out = rig.concourse.fly(&check);
    assert!(out.status.success(), "{}", seen.keep(&out));
    let requests = rig.apps.requests();
    assert!(
        requests.len() == 1 && requests[0].starts_with("HEAD ") && requests[0].ends_with(" 200"),
        "{requests:?}"
    );
}

/// `fly abort-build` mid-rollout: Concourse sends the put SIGTERM, `out` restores the pod template
/// it found, and the job ends aborted with the Deployment back on the previous digest.
fn an_aborted_build_restores_the_previous_digest(rig: &Rig, seen: &mut Seen) {
    let previous = rig.deployed_image();
    let v5 = rig.push_app("v5-never-ready");
    // Its pods run but never become ready: the rollout waits until it is aborted.
    rig.cluster
        .fail_images(&format!("{}@{v5}", rig.repository), PodFailure::NeverReady);
    let name = rig.builds().len() as u32 + 1;
    let out = rig.actions_step(rig.var("webhook_token"));
    assert!(out.status.success(), "{}", seen.keep(&out));
    let pinned = format!("{}@{v5}", rig.repository);
    rig.concourse
        .wait_for("the put patched the Deployment", BUILD_TIMEOUT, || {
            (rig.deployed_image() == pinned).then_some(())
        });
    rig.concourse.fly_ok(&[
        "abort-build",
        "-j",
        &format!("{PIPELINE}/{JOB}"),
        "-b",
        &name.to_string(),
    ]);
    let build = rig.finished_build(name, BUILD_TIMEOUT);
    let log = seen.keep(&rig.watch(name));
    assert_eq!(build.status, "aborted", "{log}");
    assert_eq!(rig.deployed_image(), previous, "{log}");
}

/// 7. The same pipeline following releases (`semver_constraint` instead of `tag`): a release
///    tag deploys, named in the change-cause; a pre-release, a release outside the constraint and
///    a non-version tag are never versions, so nothing triggers; the next release deploys.
fn releases_deploy_and_pre_releases_do_not(rig: &Rig, seen: &mut Seen) {
    // Another pipeline is another user: bound to the same Role, as a user adds a subject to
    // pipeline/rbac.yaml for each pipeline that deploys.
    rig.cluster.kubectl_ok(&[
        "-n",
        &rig.namespace,
        "create",
        "rolebinding",
        "releases",
        "--role=image-rollout",
        &format!("--user=concourse:main/{RELEASES}"),
    ]);
    rig.set_variant(
        RELEASES,
        &[(
            "      tag: ((image_tag))\n",
            "      semver_constraint: ((release_constraint))\n",
        )],
        &[
            ("image_tag", None),
            ("release_constraint", Some(">= 1.0, < 2")),
        ],
    );
    let check = ["check-resource", "-r", &format!("{RELEASES}/{RESOURCE}")];
    let tags = |versions: Vec<serde_json::Value>| -> Vec<String> {
        versions
            .iter()
            .map(|v| v["tag"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let v1 = rig.push_app_as("r1.0.0", "1.0.0");
    release_deploys(rig, seen, "1.0.0", &v1, 1);
    assert_eq!(tags(rig.versions_of(RELEASES)), ["1.0.0"]);

    for (revision, tag) in [
        ("r1.1.0-rc.1", "1.1.0-rc.1"),
        ("r2.0.0", "2.0.0"),
        ("nightly", "nightly"),
    ] {
        rig.push_app_as(revision, tag);
    }
    let out = rig.concourse.fly(&check);
    assert!(out.status.success(), "{}", seen.keep(&out));
    assert_eq!(tags(rig.versions_of(RELEASES)), ["1.0.0"], "no new version");
    assert_eq!(rig.builds_of(RELEASES).len(), 1, "nothing triggered");

    let v2 = rig.push_app_as("r1.1.0", "1.1.0");
    release_deploys(rig, seen, "1.1.0", &v2, 2);
    assert_eq!(tags(rig.versions_of(RELEASES)), ["1.1.0", "1.0.0"]);
    rig.concourse
        .fly_ok(&["destroy-pipeline", "--non-interactive", "-p", RELEASES]);
}

/// A check of the releases pipeline, and its deploy build `build` rolling `digest`, `tag` in the
/// change-cause.
fn release_deploys(rig: &Rig, seen: &mut Seen, tag: &str, digest: &str, build: u32) {
    let check = ["check-resource", "-r", &format!("{RELEASES}/{RESOURCE}")];
    let out = rig.concourse.fly(&check);
    assert!(out.status.success(), "{}", seen.keep(&out));
    let finished = rig.finished_build_of(RELEASES, build, BUILD_TIMEOUT);
    let log = seen.keep(&rig.watch_of(RELEASES, build));
    assert_eq!(finished.status, "succeeded", "{log}");
    let pinned = format!("{}@{digest}", rig.repository);
    assert_eq!(rig.deployed_image(), pinned, "{log}");
    let cause = rig.deployment("{.metadata.annotations.kubernetes\\.io/change-cause}");
    assert!(
        cause.starts_with(&format!(
            "image-rollout {pinned} ({tag}) by {RELEASES}/{JOB} #{build}"
        )),
        "{cause}"
    );
}

/// The ID token a build of `pipeline` (deploy.yml's var source, with `edits`) gets: a job added to
/// the pipeline writes it to a file for the test, as no shipped job would.
fn id_token_of(rig: &Rig, pipeline: &str, edits: &[(&str, &str)]) -> String {
    let file = rig.dir().join(format!("{pipeline}.token"));
    let job = format!(
        "jobs:\n  - name: hand-over-token\n    plan:\n      - task: token\n        config:\n          platform: linux\n          params: {{TOKEN: ((cluster-id:token))}}\n          run: {{path: /bin/sh, args: [-c, 'printf %s \"$TOKEN\" > {}']}}\n",
        file.display()
    );
    let mut edits = edits.to_vec();
    edits.push(("jobs:\n", &job));
    rig.set_variant(pipeline, &edits, &[]);
    rig.concourse.fly_ok(&[
        "trigger-job",
        "-w",
        "-j",
        &format!("{pipeline}/hand-over-token"),
    ]);
    std::fs::read_to_string(&file).expect("the job wrote its token")
}

/// `kubectl auth whoami` with `token`: the user name the API server gives it.
fn whoami(rig: &Rig, token: &str) -> String {
    let kubeconfig = rig.dir().join("whoami.kubeconfig");
    std::fs::write(
        &kubeconfig,
        rig.cluster.kubeconfig_for_token(&rig.namespace, token),
    )
    .unwrap();
    let out = std::process::Command::new(testbed::cluster::kubectl_path())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .expect("kubectl");
    std::fs::remove_file(&kubeconfig).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 8. Every deploy above ran as the pipeline's own user: the ID token a build of the shipped
///    pipeline gets is `concourse:main/family-assistant` to the API server, and nothing else
///    holds a Kubernetes credential.
fn the_pipeline_deploys_as_its_own_user(rig: &Rig) {
    let token = id_token_of(rig, PIPELINE, &[]);
    assert_eq!(whoami(rig, &token), format!("concourse:main/{PIPELINE}"));
    rig.set_pipeline(&[]);
}

/// 9. The same file set as another pipeline of the same Concourse: its token is another user,
///    bound to nothing, and its put fails before changing anything, naming that user and the verb.
fn another_pipeline_s_token_is_refused_before_anything_changes(rig: &Rig, seen: &mut Seen) {
    const INTRUDER: &str = "intruder";
    let before = rig.deployed_image();
    rig.set_variant(INTRUDER, &[], &[]);
    // Its first check finds the current digest and triggers its deploy job.
    let build = rig.finished_build_of(INTRUDER, 1, BUILD_TIMEOUT);
    let log = seen.keep(&rig.watch_of(INTRUDER, 1));
    assert_eq!(build.status, "failed", "{log}");
    assert!(
        log.contains(&format!(
            "concourse:main/{INTRUDER} may not get deployments.apps/{}",
            testbed::concourse::rig::APP
        )) && log.contains("nothing was changed"),
        "{log}"
    );
    assert_eq!(rig.deployed_image(), before);
    rig.concourse
        .fly_ok(&["destroy-pipeline", "--non-interactive", "-p", INTRUDER]);
}

/// 10. A token for another audience (the var source's `audience` edited): the API server answers
///     401, and the put says which setting and which file must agree.
fn a_token_for_another_audience_is_refused_in_one_line(rig: &Rig, seen: &mut Seen) {
    let before = rig.deployed_image();
    rig.set_variant(
        PIPELINE,
        &[("audience: [kubernetes]", "audience: [another-service]")],
        &[],
    );
    let name = rig.builds().len() as u32 + 1;
    rig.concourse
        .fly_ok(&["trigger-job", "-j", &format!("{PIPELINE}/{JOB}")]);
    let line = failed_with(rig, seen, name, BUILD_TIMEOUT);
    assert!(
        line.contains("401")
            && line.contains("audience")
            && line.contains("AuthenticationConfiguration"),
        "{line}"
    );
    assert_eq!(rig.deployed_image(), before);
    rig.set_pipeline(&[]);
}

/// 11. GitOps mode waits with read-only access as its own pipeline's user: the ID token of a build
///     of `family-assistant-gitops` (pipeline/rbac-readonly.yaml binds it), given to `out` in
///     GitOps mode; the test plays the agent and applies the commit.
fn the_gitops_wait_runs_as_its_pipeline_s_read_only_user(rig: &Rig, seen: &mut Seen) {
    const GITOPS: &str = "family-assistant-gitops";
    rig.cluster.apply(
        &rig.namespace,
        include_str!("../pipeline/rbac-readonly.yaml"),
    );
    let token = id_token_of(rig, GITOPS, &[]);
    rig.concourse
        .fly_ok(&["destroy-pipeline", "--non-interactive", "-p", GITOPS]);
    assert_eq!(whoami(rig, &token), format!("concourse:main/{GITOPS}"));

    let server = testbed::git::GitServer::start();
    let app = testbed::concourse::rig::APP;
    let manifest = testbed::concourse::rig::deployment(&rig.deployed_image(), 2, 0);
    server.commit("main", &[("deploy/deployment.yaml", &manifest)], "seed");
    let digest = rig.push_app("v-gitops");
    let image = format!("{}@{digest}", rig.repository);
    let source = serde_json::json!({
        "repository": rig.repository,
        "git": {
            "uri": server.url, "paths": ["deploy/"], "insecure": true,
            "username": testbed::git::USER, "password": testbed::git::PASSWORD,
        },
        "namespace": rig.namespace,
        "deployment": app,
        "server": rig.var("kubernetes_server"),
        "token": token,
        "certificate_authority": rig.var("kubernetes_ca"),
    });
    let request =
        serde_json::json!({"source": source, "params": {"digest": digest, "timeout": "2m"}});
    let dir = tempfile::tempdir().unwrap();
    let mut put =
        testbed::step::Running::start(env!("CARGO_BIN_EXE_out"), Some(dir.path()), &request, &[]);
    put.wait_for_line("waiting for the pod template to run ");
    rig.cluster.kubectl_ok(&[
        "-n",
        &rig.namespace,
        "set",
        "image",
        &format!("deployment/{app}"),
        &format!("{app}={image}"),
    ]);
    let result = put.finish();
    result.assert_never_prints(&token);
    seen.0.push(result.stderr.clone());
    assert!(result.ok(), "{}", result.stderr);
    assert_eq!(rig.deployed_image(), image);
}

/// 12. A token that expires mid-rollout (`expires_in: 20s`, a rollout of 90 s): the API server
///     refuses it when the wait reopens its watches (every minute), the put fails saying the ID
///     token expired and which setting to raise, and that the rollback could not run with it.
fn a_token_that_expires_mid_rollout_names_expires_in(rig: &Rig, seen: &mut Seen) {
    rig.set_variant(PIPELINE, &[("expires_in: 30m", "expires_in: 20s")], &[]);
    min_ready_seconds(rig, 45);
    let name = rig.builds().len() as u32 + 1;
    rig.push_app("v-slow");
    let check = ["check-resource", "-r", &format!("{PIPELINE}/{RESOURCE}")];
    let out = rig.concourse.fly(&check);
    assert!(out.status.success(), "{}", seen.keep(&out));
    let line = failed_with(rig, seen, name, Duration::from_secs(240));
    // Said before the patch, too: the put knew its token would not last.
    let log = seen.0.last().expect("the build's log");
    assert!(
        log.contains("note: the token expires in ")
            && log.contains("sooner than params.timeout (10m)"),
        "{log}"
    );
    assert!(
        line.contains("the Concourse ID token expired")
            && line.contains("expires_in")
            && line.contains("params.timeout")
            && line.contains("ROLLBACK FAILED"),
        "{line}"
    );
    rig.set_pipeline(&[]);
    min_ready_seconds(rig, 0);
}

/// Waits for the deploy job's build `name` to fail, and returns its one `error:` line.
fn failed_with(rig: &Rig, seen: &mut Seen, name: u32, timeout: Duration) -> String {
    let build = rig.finished_build(name, timeout);
    let log = seen.keep(&rig.watch(name));
    assert_eq!(build.status, "failed", "{log}");
    let line = log.lines().find(|l| l.starts_with("error: "));
    line.unwrap_or_else(|| panic!("no error line in:\n{log}"))
        .to_string()
}

/// The id of the newest check build of the resource that the ATC stored: one that a webhook or
/// `fly check-resource` created. (Its scanner's periodic checks run in memory, so they cannot be
/// mistaken for one; it deletes older stored checks, so this is the newest, not a count.)
fn newest_stored_check(rig: &Rig) -> i64 {
    let builds = rig.concourse.api("builds?limit=1000");
    builds
        .as_array()
        .expect("a list of builds")
        .iter()
        .filter(|b| b["name"] == "check" && b["resource_name"] == RESOURCE)
        .filter_map(|b| b["id"].as_i64())
        .max()
        .unwrap_or(0)
}
