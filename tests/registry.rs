//! `check` and `in`, the built binaries, against the real Distribution registry (see
//! `testbed::registry`): Concourse's version semantics, the three ways registries authenticate,
//! multi-arch images, retries, and how every failure is reported.
//!
//! Each test starts its own registry, so they run in parallel.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testbed::registry::{Auth, Credentials, Fault, ImageSpec, Layout, Platform, Registry, Times};
use testbed::step::{self, StepResult};

const CHECK: &str = env!("CARGO_BIN_EXE_check");
const IN: &str = env!("CARGO_BIN_EXE_in");

/// `source:` for `name` on `registry` (through its proxy), with the credentials it wants.
fn source(registry: &Registry, name: &str) -> Value {
    let mut source = json!({"repository": registry.repository(name), "insecure": true});
    if let Some(c) = registry.credentials() {
        source["username"] = c.username.clone().into();
        source["password"] = c.password.clone().into();
    }
    source
}

fn check(source: &Value, version: Option<&str>) -> StepResult {
    step::check(CHECK, source, version)
}

/// The digests a successful `check` printed, oldest first.
fn versions(result: &StepResult) -> Vec<String> {
    let Value::Array(list) = result.json() else {
        panic!("check printed no list: {}", result.stdout)
    };
    list.iter()
        .map(|v| {
            let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
            assert_eq!(keys, ["digest", "tag"], "version {v}");
            v["digest"].as_str().expect("digest").to_string()
        })
        .collect()
}

/// Runs `in` into a fresh directory; returns the result and the directory.
fn get(source: &Value, digest: &str) -> (StepResult, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let request = json!({"source": source, "version": {"digest": digest}});
    (step::run(IN, Some(dir.path()), &request, &[]), dir)
}

fn metadata(result: &StepResult, name: &str) -> Option<String> {
    result.json()["metadata"]
        .as_array()
        .expect("metadata list")
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["value"].as_str().expect("string value").to_string())
}

fn read(dir: &tempfile::TempDir, file: &str) -> String {
    std::fs::read_to_string(dir.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn credentials() -> Credentials {
    Credentials::new("ci-bot", "s3cret-Pa55word")
}

const WRONG_PASSWORD: &str = "not-the-Pa55word-xyzzy";

// ---- check: Concourse's version semantics ----

#[test]
fn check_open_registry_reports_the_tag_digest_in_one_request() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let source = source(&registry, "app");

    assert_eq!(versions(&check(&source, None)), [v1.as_str()]);
    assert_eq!(registry.requests(), ["HEAD /v2/app/manifests/latest 200"]);

    registry.reset_requests();
    assert_eq!(versions(&check(&source, Some(&v1))), [v1]);
    assert_eq!(registry.requests(), ["HEAD /v2/app/manifests/latest 200"]);
}

#[test]
fn check_of_a_missing_tag_reports_no_versions() {
    let registry = Registry::start(Auth::Open);
    registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let mut source = source(&registry, "app");
    source["tag"] = "not-pushed-yet".into();

    let result = check(&source, None);
    assert_eq!(result.stdout.trim(), "[]");
    assert_eq!(registry.requests().len(), 1);
}

#[test]
fn check_after_the_tag_moved_reports_old_then_new() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "main");
    let v2 = registry.push(&Layout::image(&ImageSpec::new("v2")), "app", "main");
    let mut source = source(&registry, "app");
    source["tag"] = "main".into();

    assert_eq!(versions(&check(&source, Some(&v1))), [v1.clone(), v2]);
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/app/manifests/main 200".to_string(),
            format!("HEAD /v2/app/manifests/{v1} 200"),
        ]
    );
}

#[test]
fn check_after_the_old_digest_was_deleted_reports_only_the_new() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let v2 = registry.push(&Layout::image(&ImageSpec::new("v2")), "app", "latest");
    registry.delete("app", &v1);

    assert_eq!(versions(&check(&source(&registry, "app"), Some(&v1))), [v2]);
}

// ---- authentication ----

#[test]
fn basic_auth_check_and_in() {
    let registry = Registry::start(Auth::Basic(credentials()));
    let spec = ImageSpec::new("basic");
    let v1 = registry.push(&Layout::image(&spec), "private/app", "latest");
    let source = source(&registry, "private/app");

    assert_eq!(versions(&check(&source, None)), [v1.as_str()]);
    // The challenge, then the answer: no `/v2/` ping.
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/private/app/manifests/latest 401",
            "HEAD /v2/private/app/manifests/latest 200"
        ]
    );

    let (result, dir) = get(&source, &v1);
    assert_eq!(metadata(&result, "revision").as_deref(), Some("basic"));
    assert_eq!(read(&dir, "digest"), v1);
    result.assert_never_prints(&credentials().password);
}

#[test]
fn token_auth_check_and_in_fetch_one_token() {
    let registry = Registry::start(Auth::Token(Some(credentials())));
    let spec = ImageSpec::new("token");
    let v1 = registry.push(&Layout::image(&spec), "owner/app", "main");
    let v2 = registry.push(
        &Layout::image(&ImageSpec::new("token2")),
        "owner/app",
        "main",
    );
    let mut source = source(&registry, "owner/app");
    source["tag"] = "main".into();

    assert_eq!(versions(&check(&source, None)), [v2.as_str()]);
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/owner/app/manifests/main 401",
            "GET /token 200",
            "HEAD /v2/owner/app/manifests/main 200"
        ]
    );

    // The token answers for every later request of the process.
    registry.reset_requests();
    assert_eq!(versions(&check(&source, Some(&v1))), [v1.clone(), v2]);
    let requests = registry.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(requests.iter().filter(|r| r.contains("/token")).count(), 1);

    let (result, dir) = get(&source, &v1);
    assert_eq!(metadata(&result, "revision").as_deref(), Some("token"));
    assert_eq!(read(&dir, "digest"), v1);
    result.assert_never_prints(&credentials().password);
}

#[test]
fn token_auth_without_credentials_for_a_public_image() {
    let registry = Registry::start(Auth::Token(None));
    let v1 = registry.push(&Layout::image(&ImageSpec::new("public")), "app", "latest");

    assert_eq!(versions(&check(&source(&registry, "app"), None)), [v1]);
    assert_eq!(registry.requests().len(), 3);
}

#[test]
fn wrong_password_is_one_line_without_the_password() {
    for auth in [Auth::Basic(credentials()), Auth::Token(Some(credentials()))] {
        let registry = Registry::start(auth.clone());
        let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
        let mut source = source(&registry, "app");
        source["password"] = WRONG_PASSWORD.into();

        let result = check(&source, None);
        let error = result.error_line();
        assert!(error.contains(&registry.host()), "{auth:?}: {error}");
        assert!(error.contains("HTTP 401"), "{auth:?}: {error}");
        assert!(error.contains("source.password"), "{auth:?}: {error}");
        result.assert_never_prints(WRONG_PASSWORD);

        let (result, _dir) = get(&source, &v1);
        result.error_line();
        result.assert_never_prints(WRONG_PASSWORD);
    }
}

#[test]
fn private_registry_without_credentials_says_so() {
    let registry = Registry::start(Auth::Basic(credentials()));
    registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let source = json!({"repository": registry.repository("app"), "insecure": true});

    let error = check(&source, None).error_line();
    assert!(
        error.contains("requires a username and password"),
        "{error}"
    );
}

// ---- later checks in the same check container ----

/// Runs `check` as the next check in a container whose temp dir is `tmp`: Concourse keeps a
/// resource's check container for 5 minutes to an hour, so its checks share one file system.
fn check_in_container(tmp: &Path, source: &Value, version: Option<&str>) -> StepResult {
    let mut request = json!({ "source": source });
    if let Some(digest) = version {
        request["version"] = json!({ "digest": digest });
    }
    let tmp = tmp.to_str().expect("UTF-8 temp dir");
    step::run(CHECK, None, &request, &[("TMPDIR", tmp)])
}

/// The one challenge remembered under `tmp`: its file and what it holds.
fn remembered(tmp: &Path) -> (PathBuf, Value) {
    let dirs: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let files: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let entry = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).expect("JSON entry");
    (files[0].clone(), entry)
}

/// A token registry with `app:latest` (`v1`), a second token server (`other`), and a check
/// container's temp dir whose first check remembered the registry's challenge.
struct Warm {
    registry: Registry,
    other: Registry,
    v1: String,
    source: Value,
    tmp: tempfile::TempDir,
}

fn warm_container() -> Warm {
    let registry = Registry::start(Auth::Token(Some(credentials())));
    let other = Registry::start(Auth::Token(Some(credentials())));
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let source = source(&registry, "app");
    let tmp = tempfile::tempdir().unwrap();
    check_in_container(tmp.path(), &source, None).json();
    Warm {
        registry,
        other,
        v1,
        source,
        tmp,
    }
}

/// Points the remembered challenge in `tmp` at `server`'s token endpoint.
fn remember_realm(tmp: &Path, server: &Registry) {
    let (file, mut entry) = remembered(tmp);
    entry["realm"] = format!("http://{}/token", server.host()).into();
    std::fs::write(file, entry.to_string()).unwrap();
}

#[test]
fn later_checks_in_a_container_answer_the_challenge_before_asking() {
    let basic = Auth::Basic(credentials());
    let token = Auth::Token(Some(credentials()));
    let head = "HEAD /v2/app/manifests/latest 200";
    for (auth, first, later) in [
        (basic, 2, vec![head]),
        (token, 3, vec!["GET /token 200", head]),
    ] {
        let registry = Registry::start(auth.clone());
        let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
        let source = source(&registry, "app");
        let tmp = tempfile::tempdir().unwrap();

        assert_eq!(
            versions(&check_in_container(tmp.path(), &source, None)),
            [v1.as_str()]
        );
        assert_eq!(registry.requests().len(), first, "{auth:?}");
        registry.reset_requests();
        let result = check_in_container(tmp.path(), &source, Some(&v1));
        assert_eq!(versions(&result), [v1.as_str()]);
        assert_eq!(registry.requests(), later, "{auth:?}");
        result.assert_never_prints(&credentials().password);

        // How the registry asked is kept, privately; never what was answered.
        let (file, entry) = remembered(tmp.path());
        let keys: Vec<_> = entry.as_object().unwrap().keys().cloned().collect();
        assert!(
            keys.iter()
                .all(|k| ["scheme", "realm", "service"].contains(&k.as_str())),
            "{auth:?}: {entry}"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&credentials().password), "{text}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
}

#[test]
fn a_stale_remembered_realm_costs_one_token_request_and_is_replaced() {
    // The other token server issues tokens this registry does not accept.
    let Warm {
        registry,
        other: elsewhere,
        v1,
        source,
        tmp,
    } = warm_container();

    remember_realm(tmp.path(), &elsewhere);
    registry.reset_requests();
    assert_eq!(
        versions(&check_in_container(tmp.path(), &source, None)),
        [v1.as_str()]
    );
    assert_eq!(elsewhere.requests(), ["GET /token 200"]);
    let challenged = [
        "HEAD /v2/app/manifests/latest 401",
        "GET /token 200",
        "HEAD /v2/app/manifests/latest 200",
    ];
    assert_eq!(registry.requests(), challenged);
    let (_, entry) = remembered(tmp.path());
    assert_eq!(entry["realm"], format!("http://{}/token", registry.host()));

    // A realm that no longer answers is tried once, not retried for a minute.
    let (file, mut entry) = remembered(tmp.path());
    entry["realm"] = "http://127.0.0.1:1/token".into();
    std::fs::write(file, entry.to_string()).unwrap();
    registry.reset_requests();
    let result = check_in_container(tmp.path(), &source, None);
    assert_eq!(versions(&result), [v1.as_str()]);
    assert_eq!(registry.requests(), challenged);
    assert!(!result.stderr.contains("retrying"), "{}", result.stderr);
}

#[test]
fn a_remembered_realm_that_refuses_the_password_is_asked_once() {
    let registry = Registry::start(Auth::Token(Some(credentials())));
    registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let mut source = source(&registry, "app");
    let tmp = tempfile::tempdir().unwrap();
    check_in_container(tmp.path(), &source, None).json();

    source["password"] = WRONG_PASSWORD.into();
    registry.reset_requests();
    let result = check_in_container(tmp.path(), &source, None);
    let error = result.error_line();
    assert!(error.contains(&registry.host()), "{error}");
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(error.contains("source.password"), "{error}");
    result.assert_never_prints(WRONG_PASSWORD);
    // The refused token, then the registry naming that same realm: not a second token request.
    assert_eq!(
        registry.requests(),
        ["GET /token 401", "HEAD /v2/app/manifests/latest 401"]
    );
}

#[test]
fn a_temp_dir_others_could_write_never_decides_where_credentials_go() {
    // The other token server stands in for one that collects credentials: it logs every
    // request it gets.
    let Warm {
        registry,
        other: collector,
        v1,
        source,
        tmp,
    } = warm_container();
    remember_realm(tmp.path(), &collector);
    let (file, _) = remembered(tmp.path());
    let dir = file.parent().unwrap();

    // Writable by anyone (another user could have planted the entry), or (as root, which can
    // hand it over) owned by someone else: not used.
    let mut untrusted = vec![std::fs::Permissions::from_mode(0o777)];
    if std::fs::metadata(tmp.path()).unwrap().uid() == 0 {
        untrusted.push(std::fs::Permissions::from_mode(0o700));
    }
    for (i, permissions) in untrusted.into_iter().enumerate() {
        std::fs::set_permissions(dir, permissions).unwrap();
        if i == 1 {
            std::os::unix::fs::chown(dir, Some(65534), None).unwrap();
        }
        registry.reset_requests();
        assert_eq!(
            versions(&check_in_container(tmp.path(), &source, None)),
            [v1.as_str()]
        );
        assert_eq!(registry.requests().len(), 3, "{:?}", registry.requests());
        assert!(
            collector.requests().is_empty(),
            "{:?}",
            collector.requests()
        );
    }
}

// ---- multi-arch ----

#[test]
fn multi_arch_tag_reports_the_index_digest_or_the_platform_image() {
    let registry = Registry::start(Auth::Open);
    let layout = Layout::index(&ImageSpec::new("multi"), true);
    let index = registry.push(&layout, "app", "main");
    let mut source = source(&registry, "app");
    source["tag"] = "main".into();

    assert_eq!(versions(&check(&source, None)), [index]);

    for (platform, want) in [
        ("linux/arm64", &Platform::LINUX_ARM64),
        ("linux/arm64/v8", &Platform::LINUX_ARM64),
        ("linux/amd64", &Platform::LINUX_AMD64),
    ] {
        source["platform"] = platform.into();
        registry.reset_requests();
        assert_eq!(
            versions(&check(&source, None)),
            [layout.image_digest(want)],
            "{platform}"
        );
        // The platform's digest is read from the index body: one GET.
        assert_eq!(registry.requests(), ["GET /v2/app/manifests/main 200"]);
    }
}

#[test]
fn platform_missing_from_the_index_lists_the_platforms() {
    let registry = Registry::start(Auth::Open);
    registry.push(
        &Layout::index(&ImageSpec::new("multi"), true),
        "app",
        "latest",
    );
    let mut source = source(&registry, "app");
    source["platform"] = "linux/s390x".into();

    let error = check(&source, None).error_line();
    assert!(error.contains("source.platform"), "{error}");
    assert!(error.contains("linux/s390x"), "{error}");
    assert!(error.contains("linux/amd64, linux/arm64/v8"), "{error}");
    // The attestation entry is not an image anyone can run.
    assert!(!error.contains("unknown"), "{error}");
}

#[test]
fn platform_of_a_single_platform_tag_is_checked() {
    let registry = Registry::start(Auth::Open);
    let digest = registry.push(
        &Layout::image(&ImageSpec::new("amd64-only")),
        "app",
        "latest",
    );
    let mut source = source(&registry, "app");

    // The image is for linux/amd64: following it for that platform yields its digest…
    source["platform"] = "linux/amd64".into();
    assert_eq!(versions(&check(&source, None)), [digest]);
    // …and for arm64 nodes it is refused instead of deploying an image they cannot run.
    source["platform"] = "linux/arm64".into();
    let error = check(&source, None).error_line();
    assert!(
        error.contains(
            "source.platform: the tag is a single-platform image for linux/amd64, not linux/arm64"
        ),
        "{error}"
    );
}

// ---- in ----

#[test]
fn in_writes_the_pin_and_labels_of_an_image() {
    let registry = Registry::start(Auth::Open);
    let spec = ImageSpec::new("0123abc");
    let digest = registry.push(&Layout::image(&spec), "team/app", "latest");
    let source = source(&registry, "team/app");

    let (result, dir) = get(&source, &digest);
    let repository = registry.repository("team/app");
    assert_eq!(result.json()["version"], json!({ "digest": digest }));
    assert_eq!(read(&dir, "repository"), repository);
    assert_eq!(read(&dir, "tag"), "latest");
    assert_eq!(read(&dir, "digest"), digest);
    assert_eq!(read(&dir, "reference"), format!("{repository}@{digest}"));
    let labels: Value = serde_json::from_str(&read(&dir, "labels.json")).expect("labels JSON");
    assert_eq!(labels, json!(Layout::labels(&spec, &Platform::LINUX_AMD64)));
    assert_eq!(metadata(&result, "digest"), Some(digest));
    assert_eq!(metadata(&result, "created"), Some(spec.created));
    assert_eq!(metadata(&result, "revision"), Some(spec.revision));
    assert_eq!(metadata(&result, "source"), Some(spec.source));
    assert_eq!(metadata(&result, "platforms"), None);
}

#[test]
fn in_of_an_index_lists_platforms_and_reads_a_platform_config() {
    let registry = Registry::start(Auth::Open);
    let spec = ImageSpec::new("4567def");
    let layout = Layout::index(&spec, true);
    let index = registry.push(&layout, "app", "latest");
    let mut source = source(&registry, "app");

    let (result, dir) = get(&source, &index);
    assert_eq!(
        metadata(&result, "platforms").as_deref(),
        Some("linux/amd64, linux/arm64/v8")
    );
    assert_eq!(metadata(&result, "revision"), Some(spec.revision.clone()));
    assert_eq!(metadata(&result, "created"), Some(spec.created.clone()));
    assert_eq!(read(&dir, "digest"), index);

    // With a platform, check pins that platform's image, and in reads its config.
    source["platform"] = "linux/arm64".into();
    let arm64 = layout.image_digest(&Platform::LINUX_ARM64);
    assert_eq!(versions(&check(&source, None)), [arm64]);
    let (result, dir) = get(&source, arm64);
    assert_eq!(
        metadata(&result, "platform").as_deref(),
        Some("linux/arm64")
    );
    assert_eq!(read(&dir, "digest"), arm64);
    let labels: Value = serde_json::from_str(&read(&dir, "labels.json")).expect("labels JSON");
    assert_eq!(labels, json!(Layout::labels(&spec, &Platform::LINUX_ARM64)));
}

#[test]
fn in_of_a_deleted_digest_fails_clearly() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    registry.delete("app", &v1);

    let (result, _dir) = get(&source(&registry, "app"), &v1);
    let error = result.error_line();
    assert!(error.contains(&v1), "{error}");
    assert!(error.contains("no longer exists"), "{error}");
}

#[test]
fn in_rejects_a_manifest_that_does_not_match_its_digest() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    registry.inject("/v2/", Fault::Garbage, Times::Next(1));

    let (result, dir) = get(&source(&registry, "app"), &v1);
    let error = result.error_line();
    assert!(error.contains("does not match its digest"), "{error}");
    assert!(!dir.path().join("digest").exists());
}

// ---- faults the real registry does not produce (via the proxy) ----

#[test]
fn rate_limits_are_retried_after_retry_after() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let rate_limited = Fault::Status {
        status: 429,
        retry_after: Some(1),
    };
    registry.inject("/v2/", rate_limited, Times::Next(2));

    let result = check(&source(&registry, "app"), None);
    assert_eq!(versions(&result), [v1]);
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/app/manifests/latest 429",
            "HEAD /v2/app/manifests/latest 429",
            "HEAD /v2/app/manifests/latest 200"
        ]
    );
    assert!(
        result.stderr.contains("retrying in 1.0s"),
        "{}",
        result.stderr
    );
}

#[test]
fn unavailable_registry_is_retried() {
    let registry = Registry::start(Auth::Open);
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let unavailable = Fault::Status {
        status: 503,
        retry_after: None,
    };
    registry.inject("/v2/", unavailable, Times::Next(3));

    assert_eq!(versions(&check(&source(&registry, "app"), None)), [v1]);
    assert_eq!(registry.requests().len(), 4);
}

#[test]
fn persistently_unavailable_registry_gives_up_with_the_status() {
    let registry = Registry::start(Auth::Open);
    registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let unavailable = Fault::Status {
        status: 503,
        retry_after: None,
    };
    registry.inject("/v2/", unavailable, Times::Always);

    let error = check(&source(&registry, "app"), None).error_line();
    assert!(error.contains(&registry.host()), "{error}");
    assert!(error.contains("gave up after 6 attempts"), "{error}");
    assert!(error.contains("HTTP 503"), "{error}");
    assert_eq!(registry.requests().len(), 6);
}

#[test]
fn token_endpoint_failures_are_retried_then_reported() {
    let registry = Registry::start(Auth::Token(Some(credentials())));
    let v1 = registry.push(&Layout::image(&ImageSpec::new("v1")), "app", "latest");
    let source = source(&registry, "app");
    let unavailable = Fault::Status {
        status: 503,
        retry_after: None,
    };

    registry.inject("/token", unavailable.clone(), Times::Next(2));
    assert_eq!(versions(&check(&source, None)), [v1]);
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/app/manifests/latest 401",
            "GET /token 503",
            "GET /token 503",
            "GET /token 200",
            "HEAD /v2/app/manifests/latest 200"
        ]
    );

    registry.reset_requests();
    registry.inject("/token", unavailable, Times::Always);
    let error = check(&source, None).error_line();
    assert!(error.contains("token from 127.0.0.1"), "{error}");
    assert!(error.contains("gave up after 6 attempts"), "{error}");
    assert!(error.contains("HTTP 503"), "{error}");
    assert_eq!(registry.requests().len(), 7);
}

#[test]
fn head_without_docker_content_digest_falls_back_to_get() {
    let registry = Registry::start(Auth::Open);
    let index = registry.push(
        &Layout::index(&ImageSpec::new("multi"), false),
        "app",
        "latest",
    );
    registry.inject("/v2/", Fault::StripDigest, Times::Always);

    assert_eq!(versions(&check(&source(&registry, "app"), None)), [index]);
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/app/manifests/latest 200",
            "GET /v2/app/manifests/latest 200"
        ]
    );
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    for auth in [Auth::Basic(credentials()), Auth::Token(Some(credentials()))] {
        let registry = Registry::start(auth);
        let spec = ImageSpec::new("redirected");
        let digest = registry.push(&Layout::image(&spec), "app", "latest");
        // ghcr.io answers authenticated blob GETs with a redirect to a storage host; this
        // registry redirects manifests too.
        let storage = registry.storage_host("app");
        for path in ["/v2/app/manifests/", "/v2/app/blobs/"] {
            registry.inject(path, Fault::Redirect(storage.addr), Times::Always);
        }
        let source = source(&registry, "app");

        assert_eq!(
            versions(&check(&source, None)),
            std::slice::from_ref(&digest)
        );
        let (result, dir) = get(&source, &digest);
        assert_eq!(result.json()["version"]["digest"], digest);
        let labels: Value = serde_json::from_str(&read(&dir, "labels.json")).expect("labels");
        assert_eq!(labels, json!(Layout::labels(&spec, &Platform::LINUX_AMD64)));

        assert!(
            registry.requests().iter().any(|r| r.ends_with(" 307")),
            "{:?}",
            registry.requests()
        );
        let seen = storage.requests();
        let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
        assert!(
            lines.contains(&format!("GET /v2/app/manifests/{digest}").as_str())
                && lines
                    .iter()
                    .any(|l| l.starts_with("GET /v2/app/blobs/sha256:")),
            "{lines:?}"
        );
        let password = &credentials().password;
        for request in &seen {
            for (name, value) in &request.headers {
                assert!(
                    !name.eq_ignore_ascii_case("authorization") && !value.contains(password),
                    "{} reached the storage host with {name}: {value}",
                    request.line
                );
            }
        }
    }
}

/// Registries and proxies gone wrong in ways the real one never does (served by the fault
/// proxy): each ends the step with one line naming the registry, in bounded time and memory.
#[test]
fn hostile_registries_end_in_bounded_time_and_memory() {
    struct Case {
        name: &'static str,
        path: &'static str,
        fault: Fault,
        /// `check` with `platform` (which GETs the tag's manifest) instead of `in`.
        check_platform: bool,
        expected: &'static str,
        /// Generous bounds: the timeouts are 10 s of silence and 30 s per request.
        within: Duration,
    }
    let seconds = Duration::from_secs;
    let cases = [
        Case {
            name: "hang",
            path: "manifests/",
            fault: Fault::Hang,
            check_platform: false,
            expected: "no complete answer in time",
            within: seconds(20),
        },
        Case {
            name: "trickle",
            path: "manifests/",
            fault: Fault::Trickle,
            check_platform: false,
            expected: "timed out",
            within: seconds(45),
        },
        Case {
            name: "huge-manifest",
            path: "manifests/",
            fault: Fault::Huge,
            check_platform: false,
            expected: "response larger than 4194304 bytes",
            within: seconds(10),
        },
        Case {
            name: "huge-config",
            path: "blobs/",
            fault: Fault::Huge,
            check_platform: false,
            expected: "response larger than 16777216 bytes",
            within: seconds(10),
        },
        Case {
            name: "huge-error",
            path: "manifests/",
            fault: Fault::HugeError(400),
            check_platform: false,
            expected: "HTTP 400",
            within: seconds(10),
        },
        Case {
            name: "truncated",
            path: "manifests/",
            fault: Fault::Truncate,
            check_platform: false,
            expected: "reading the response failed after",
            within: seconds(10),
        },
        Case {
            name: "short-length",
            path: "manifests/",
            fault: Fault::ShortLength,
            check_platform: false,
            expected: "content does not match its digest",
            within: seconds(10),
        },
        Case {
            name: "other-bytes",
            path: "blobs/",
            fault: Fault::Garbage,
            check_platform: false,
            expected: "content does not match its digest",
            within: seconds(10),
        },
        Case {
            name: "invalid-json",
            path: "manifests/",
            fault: Fault::InvalidJson,
            check_platform: true,
            expected: "manifest is not JSON",
            within: seconds(10),
        },
    ];
    let registry = Registry::start(Auth::Open);
    let layout = Layout::image(&ImageSpec::new("hostile"));
    let digests: Vec<String> = cases
        .iter()
        .map(|case| registry.push(&layout, case.name, "latest"))
        .collect();
    for case in &cases {
        let path = format!("/v2/{}/{}", case.name, case.path);
        registry.inject(&path, case.fault.clone(), Times::Always);
    }
    std::thread::scope(|scope| {
        for (case, digest) in cases.iter().zip(&digests) {
            let registry = &registry;
            scope.spawn(move || {
                let mut source = source(registry, case.name);
                let dir = tempfile::tempdir().expect("tempdir");
                let measured = if case.check_platform {
                    source["platform"] = json!("linux/amd64");
                    step::run_measured(CHECK, None, &json!({"source": source}), &[])
                } else {
                    let request = json!({"source": source, "version": {"digest": digest}});
                    step::run_measured(IN, Some(dir.path()), &request, &[])
                };
                let line = measured.result.error_line();
                let mib = measured.peak_rss_bytes as f64 / f64::from(1 << 20);
                println!(
                    "{:>13}: exit {:?} after {:.1?}, peak RSS {mib:.1} MiB: {line}",
                    case.name, measured.result.code, measured.elapsed
                );
                assert!(
                    line.contains(&format!("registry {}", registry.host()))
                        && line.contains(case.expected),
                    "{}: {line}",
                    case.name
                );
                assert!(
                    measured.elapsed < case.within,
                    "{}: {measured:?}",
                    case.name
                );
                // The 1 GiB bodies must not be held: the cap bounds memory.
                assert!(mib < 64.0, "{}: {mib:.1} MiB", case.name);
            });
        }
    });
}

#[test]
fn unreachable_registry_is_named() {
    let closed = testbed::registry::free_port();
    let source = json!({"repository": format!("{closed}/app"), "insecure": true});

    let error = check(&source, None).error_line();
    assert!(
        error.contains(&format!("registry {closed}: cannot connect")),
        "{error}"
    );
}

// ---- requests that are wrong before any registry is asked ----

fn check_raw(stdin: &str) -> String {
    step::run_raw(CHECK, None, stdin, &[]).error_line()
}

#[test]
fn malformed_json_is_rejected() {
    let error = check_raw(r#"{"source": {"repository": "#);
    assert!(error.contains("not valid JSON"), "{error}");
    // serde would read a struct from an array by position; a request is an object.
    let error = check_raw(r#"[{"repository": "r"}]"#);
    assert!(error.contains("stdin is a JSON array"), "{error}");
}

#[test]
fn unknown_key_is_named_with_the_valid_ones() {
    let error = check_raw(r#"{"source": {"repository": "ghcr.io/a/b", "pasword": "x"}}"#);
    assert!(error.contains("`pasword`"), "{error}");
    for valid in ["`repository`", "`tag`", "`username`", "`password`"] {
        assert!(error.contains(valid), "{valid} missing: {error}");
    }
    assert!(!error.contains("\"x\""), "{error}");
}

#[test]
fn missing_repository_is_named() {
    let error = check_raw(r#"{"source": {"tag": "main"}}"#);
    assert!(error.contains("missing field `repository`"), "{error}");
}

#[test]
fn wrong_type_names_the_key() {
    let error = check_raw(r#"{"source": {"repository": "ghcr.io/a/b", "tag": 5}}"#);
    assert!(error.contains("source.tag"), "{error}");
    assert!(error.contains("invalid type"), "{error}");
}

#[test]
fn repository_with_a_tag_is_rejected() {
    let error = check_raw(r#"{"source": {"repository": "ghcr.io/a/b:v1"}}"#);
    assert!(error.contains("source.repository"), "{error}");
    assert!(error.contains("source.tag: v1"), "{error}");
}

#[test]
fn version_that_is_not_a_digest_is_rejected() {
    let error = check_raw(
        r#"{"source": {"repository": "ghcr.io/a/b"}, "version": {"digest": "sha256:abc"}}"#,
    );
    assert!(error.contains("version.digest"), "{error}");
}

// ---- TLS: a registry with its own CA ----

/// `source:` for a [`Registry::start_tls`] registry: https, its CA in `ca_certs`.
fn tls_source(registry: &Registry, name: &str) -> Value {
    let mut source = source(registry, name);
    source["insecure"] = false.into();
    source["ca_certs"] = json!([registry.ca_pem().expect("a TLS registry")]);
    source
}

#[test]
fn a_plain_http_token_realm_of_an_https_registry_is_refused_before_any_credential_is_sent() {
    // The realm is a listener of this test's own: whatever a client sent there (the Basic
    // credentials for the token, in clear) would arrive here.
    let realm = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    realm.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/token", realm.local_addr().expect("addr"));
    // Nothing is pushed (skopeo would follow the same challenge): the 401 comes first.
    let registry = Registry::start_tls_with_realm(Auth::Token(Some(credentials())), &url);
    let mut source = tls_source(&registry, "team/app");
    source["tag"] = "main".into();

    let result = check(&source, None);
    let error = result.error_line();
    assert!(
        error.contains(&format!("registry {}", registry.host()))
            && error.contains(&url)
            && error.contains("plain http"),
        "{error}"
    );
    result.assert_never_prints(&credentials().password);
    assert!(
        realm.accept().is_err(),
        "the check connected to the plain-http realm"
    );
}

#[test]
fn a_registry_with_its_own_ca_is_trusted_through_ca_certs() {
    // Token auth: the realm is on the same https host, so both verify against ca_certs.
    let registry = Registry::start_tls(Auth::Token(Some(credentials())));
    let index = registry.push(
        &Layout::index(&ImageSpec::new("v1"), true),
        "team/app",
        "main",
    );
    let mut source = tls_source(&registry, "team/app");
    source["tag"] = "main".into();

    assert_eq!(versions(&check(&source, None)), [index.as_str()]);
    assert_eq!(registry.requests().len(), 3, "{:?}", registry.requests());
    let (result, dir) = get(&source, &index);
    assert!(result.ok(), "{result:?}");
    assert_eq!(read(&dir, "digest"), index);

    // Without the CA nothing vouches for the certificate: the system bundle is consulted and
    // does not know it either.
    source["ca_certs"] = json!([]);
    let error = check(&source, None).error_line();
    assert!(
        error.contains(&format!(
            "registry {}: its TLS certificate is not trusted",
            registry.host()
        )) && error.contains("UnknownIssuer"),
        "{error}"
    );

    // The system bundle is SSL_CERT_FILE when set (as in the image): with the CA there, it is
    // trusted without ca_certs.
    let bundle = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(bundle.path(), registry.ca_pem().unwrap()).expect("write bundle");
    let request = json!({ "source": source });
    let result = step::run(
        CHECK,
        None,
        &request,
        &[("SSL_CERT_FILE", bundle.path().to_str().unwrap())],
    );
    assert_eq!(versions(&result), [index.as_str()]);
}

#[test]
fn a_ca_certs_entry_that_is_not_a_certificate_fails_at_once_naming_it() {
    let registry = Registry::start_tls(Auth::Open);
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHNlY3JldC1rZXktbWF0ZXJpYWwtMDEyMzQ1Njc4OWFi\n-----END PRIVATE KEY-----\n";
    for (entry, expected) in [
        ("not a pem", "is not a PEM certificate"),
        (key, "holds a private key, not a certificate"),
    ] {
        let mut source = tls_source(&registry, "app");
        source["ca_certs"]
            .as_array_mut()
            .unwrap()
            .push(entry.into());
        let result = check(&source, None);
        let error = result.error_line();
        assert!(error.contains("source.ca_certs[1]"), "{error}");
        assert!(error.contains(expected), "{error}");
        result.assert_never_prints("MC4CAQAwBQYDK2VwBCIEI");
        // `in` reads the same source the same way.
        let (result, _dir) = get(&source, &format!("sha256:{}", "0".repeat(64)));
        assert!(result.error_line().contains("source.ca_certs[1]"));
    }
    // The cluster's CA (ignored by check, still a certificate) is checked the same way.
    let mut source = tls_source(&registry, "app");
    source["certificate_authority"] = "garbage".into();
    let error = check(&source, None).error_line();
    assert!(error.contains("source.certificate_authority"), "{error}");
    assert_eq!(
        registry.requests(),
        Vec::<String>::new(),
        "nothing was asked"
    );
}
