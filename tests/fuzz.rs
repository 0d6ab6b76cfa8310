//! Property tests over every parser that takes user or server input: request JSON (`source`,
//! `params`, `version`, durations, platforms, digests), `WWW-Authenticate` challenges, token
//! responses, manifests and indexes, kubeconfigs. For any input: no panic; an error is one line
//! that names the key (or, for server answers, is a clause the caller prefixes with the server);
//! no secret in any message. (Image references are held against oci-spec by their own property
//! test.) These are pure functions, so they run in-process.
//!
//! The case counts add up to about 250,000 (a few minutes of CPU in a debug build, what CI runs).
//! The long run multiplies every count: `IRR_FUZZ_SCALE=40 cargo test --test fuzz`.

use image_rollout_resource::cluster;
use image_rollout_resource::config::{Platform, Source};
use image_rollout_resource::policy::select::Policy;
use image_rollout_resource::protocol::parse_request;
use image_rollout_resource::registry::Fetched;
use image_rollout_resource::registry::challenge::{Challenge, bearer};
use image_rollout_resource::registry::manifest::{self, Manifest};
use image_rollout_resource::{CheckRequest, Digest, Error, InRequest, OutRequest};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Value, json};

/// `cases` scaled by `IRR_FUZZ_SCALE`; failures are not persisted (tests write nothing into the
/// source tree), the seed of a failure is printed instead.
fn config(cases: u32) -> Config {
    let scale: u32 = std::env::var("IRR_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Values the secrets of a request take; none may ever be printed.
const SECRET: &str = "s3cr3t-Zq7xw";

fn assert_one_line(message: &str) {
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "more than one line: {message:?}"
    );
    assert!(!message.is_empty());
    assert!(!message.contains(SECRET), "secret in {message:?}");
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible value for `key`, often right, sometimes wrong in type or form.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match key {
        "password" | "token" | "kubeconfig" => Just(Value::from(SECRET)).boxed(),
        "digest" => prop_oneof![
            "[0-9a-f]{64}".prop_map(|h| Value::from(format!("sha256:{h}"))),
            "sha256:[0-9a-fA-F]{0,70}".prop_map(Value::from),
            "[a-z0-9]{1,8}:.{0,20}".prop_map(Value::from),
        ]
        .boxed(),
        "timeout" => prop_oneof![
            "[0-9]{1,25}(ns|us|ms|s|m|h|d|w|M|y|min|sec|)".prop_map(Value::from),
            "([0-9]{1,4}[a-z]{1,4} ?){1,4}".prop_map(Value::from),
            ".{0,10}".prop_map(Value::from),
        ]
        .boxed(),
        "platform" => prop_oneof![
            "[a-z0-9]{0,8}(/[a-z0-9]{0,8}){0,3}".prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ]
        .boxed(),
        "workloads" => prop::collection::vec(
            "(deployment|deploy|sts|statefulset|ds|daemonset|job|)/?[a-z0-9/-]{0,10}"
                .prop_map(Value::from),
            0..4,
        )
        .prop_map(Value::Array)
        .boxed(),
        "insecure"
        | "insecure_skip_tls_verify"
        | "wait"
        | "rollback_on_failure"
        | "dry_run"
        | "skip_download" => any::<bool>().prop_map(Value::from).boxed(),
        "ca_certs" => prop::collection::vec(".{0,20}".prop_map(Value::from), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        _ => "[a-zA-Z0-9./:_@-]{0,24}".prop_map(Value::from).boxed(),
    };
    prop_oneof![4 => plausible, 1 => any_json()].boxed()
}

const SOURCE_KEYS: &[&str] = &[
    "repository",
    "tag",
    "username",
    "password",
    "platform",
    "insecure",
    "ca_certs",
    "namespace",
    "deployment",
    "workloads",
    "container",
    "kubeconfig",
    "context",
    "server",
    "token",
    "certificate_authority",
    "insecure_skip_tls_verify",
    "semver_constraint",
    "tag_regex",
    "variant",
    "pre_releases",
    "pre_release_prefixes",
    "created_at_sort",
];
const PARAM_KEYS: &[&str] = &[
    "image",
    "digest",
    "timeout",
    "wait",
    "rollback_on_failure",
    "dry_run",
    "namespace",
    "deployment",
    "workloads",
    "container",
    "skip_download",
    "token",
];

/// An object with a random subset of `keys` (plausible values) and now and then an unknown key.
fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let entries: Vec<BoxedStrategy<Option<(String, Value)>>> = keys
        .iter()
        .map(|key| {
            prop::option::weighted(0.4, value_for(key).prop_map(|v| (key.to_string(), v))).boxed()
        })
        .collect();
    (
        entries,
        prop::option::weighted(0.1, ("[a-z_]{1,10}", any_json())),
    )
        .prop_map(|(entries, unknown)| {
            Value::Object(entries.into_iter().flatten().chain(unknown).collect())
        })
}

/// A request: mostly well-formed objects, sometimes other values in their place.
fn request() -> impl Strategy<Value = Value> {
    let version = prop_oneof![
        object(&["digest"]),
        value_for("digest").prop_map(|d| json!({"digest": d, "extra": 1})),
        any_json(),
    ];
    (
        prop_oneof![9 => object(SOURCE_KEYS), 1 => any_json()],
        prop::option::of(prop_oneof![9 => object(PARAM_KEYS), 1 => any_json()]),
        prop::option::of(version),
    )
        .prop_map(|(source, params, version)| {
            let mut request = serde_json::Map::new();
            request.insert("source".into(), source);
            if let Some(p) = params {
                request.insert("params".into(), p);
            }
            if let Some(v) = version {
                request.insert("version".into(), v);
            }
            Value::Object(request)
        })
}

/// Every request parse error names where it went wrong.
fn assert_request_error(e: &Error) {
    let message = e.to_string();
    assert_one_line(&message);
    let names_a_place = [
        "source",
        "params",
        "version",
        "stdin is not valid JSON",
        "field",
    ]
    .iter()
    .any(|place| message.contains(place));
    assert!(
        message.starts_with("invalid request: ") && names_a_place,
        "{message}"
    );
}

proptest! {
    #![proptest_config(config(40_000))]

    #[test]
    fn request_json_parses_or_names_the_key(request in request()) {
        let text = request.to_string();
        for e in [
            parse_request::<CheckRequest>(&text).err(),
            parse_request::<InRequest>(&text).err(),
            parse_request::<OutRequest>(&text).err(),
        ]
        .into_iter()
        .flatten()
        {
            assert_request_error(&e);
        }
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn tag_policies_read_or_name_their_key_in_one_line(
        text in prop_oneof![".{0,40}", "[<>=~^!|, .0-9xv*-]{0,30}", "[a-z0-9()\\[\\]|.*+?{}^$-]{0,30}"],
    ) {
        for key in ["semver_constraint", "tag_regex", "variant"] {
            let source: Source =
                serde_json::from_value(json!({"repository": "r", key: text.clone()})).unwrap();
            if let Err(e) = Policy::of(&source) {
                let message = e.to_string();
                prop_assert!(message.starts_with(&format!("source.{key}: ")), "{}", message);
                prop_assert!(!message.contains('\n'), "{}", message);
            }
        }
    }

    #[test]
    fn any_stdin_is_parsed_or_refused_in_one_line(text in prop_oneof![
        ".{0,64}",
        request().prop_map(|r| {
            // Valid JSON cut short: the syntax error paths.
            let s = r.to_string();
            s.chars().take(s.chars().count() / 2).collect::<String>()
        }),
    ]) {
        if let Err(e) = parse_request::<OutRequest>(&text) {
            assert_request_error(&e);
        }
    }

    #[test]
    fn durations_parse_or_name_params_timeout(timeout in value_for("timeout")) {
        let request = json!({"source": {"repository": "r"}, "params": {"timeout": timeout}});
        match parse_request::<OutRequest>(&request.to_string()) {
            Ok(parsed) => prop_assert!(parsed.params.timeout.is_some()),
            Err(e) => {
                assert_request_error(&e);
                prop_assert!(e.to_string().contains("params.timeout"), "{}", e);
            }
        }
    }

    #[test]
    fn digests_round_trip_or_are_refused(text in prop_oneof![
        "sha256:[0-9a-f]{64}",
        "sha256:[0-9a-fA-F]{60,68}",
        ".{0,80}",
    ]) {
        match text.parse::<Digest>() {
            Ok(digest) => {
                prop_assert_eq!(digest.to_string(), text.clone());
                prop_assert_eq!(Digest::of(text.as_bytes()).to_string().len(), 71);
            }
            Err(message) => assert_one_line(&message),
        }
    }

    #[test]
    fn platforms_parse_or_are_refused(text in prop_oneof![
        "[a-z0-9]{0,8}(/[a-z0-9]{0,8}){0,3}",
        ".{0,24}",
    ]) {
        match Platform::try_from(text.clone()) {
            Ok(platform) => {
                prop_assert!(!platform.os.is_empty() && !platform.architecture.is_empty());
                // What it prints parses back to itself.
                prop_assert_eq!(Platform::try_from(platform.to_string()), Ok(platform));
            }
            Err(message) => assert_one_line(&message),
        }
    }
}

/// A `WWW-Authenticate` value: a scheme and `key=value` pairs, quoted or not, in any spacing.
fn challenge() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof!["realm", "service", "scope", "error", "[a-zA-Z]{1,6}"],
        "[ -~&&[^\"]]{0,24}",
        any::<bool>(),
    )
        .prop_map(|(k, v, quoted)| {
            if quoted {
                format!("{k}=\"{v}\"")
            } else {
                format!("{k}={}", v.replace([',', ' '], ""))
            }
        });
    prop_oneof![
        (
            prop_oneof![
                "Bearer",
                "bearer",
                "Basic",
                "BASIC",
                "Negotiate",
                "[A-Za-z]{0,8}"
            ],
            prop::collection::vec(pair, 0..5),
            prop_oneof![",", ", ", " ,"],
        )
            .prop_map(|(scheme, pairs, sep)| format!("{scheme} {}", pairs.join(sep.as_str()))),
        ".{0,80}",
    ]
}

proptest! {
    #![proptest_config(config(50_000))]

    #[test]
    fn challenges_parse_without_panicking(header in challenge()) {
        if let Some(Challenge::Bearer { realm, .. }) = Challenge::parse(&header) {
            prop_assert!(header.to_ascii_lowercase().contains("realm"));
            prop_assert!(!realm.contains('"'));
        }
    }

    #[test]
    fn quoted_bearer_challenges_keep_their_values(
        realm in "[ -~&&[^\"]]{1,40}",
        service in "[ -~&&[^\"]]{0,20}",
        scope in "[ -~&&[^\"]]{0,40}",
    ) {
        let header = format!(r#"Bearer realm="{realm}",service="{service}",scope="{scope}""#);
        prop_assert_eq!(
            Challenge::parse(&header),
            Some(Challenge::Bearer {
                realm,
                service: Some(service),
                scope: Some(scope),
            })
        );
    }
}

proptest! {
    #![proptest_config(config(30_000))]

    #[test]
    fn token_responses_yield_a_header_or_a_secret_free_line(body in prop_oneof![
        (prop_oneof!["token", "access_token", "[a-z_]{1,12}"], prop_oneof![
            Just(Value::from(SECRET)),
            Just(Value::from(format!("{SECRET}\n\u{7f}"))),
            Just(Value::from("")),
            any_json(),
        ]).prop_map(|(k, v)| json!({k: v}).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]) {
        match bearer(&body) {
            Ok(value) => prop_assert!(value.is_sensitive()),
            Err(message) => assert_one_line(message),
        }
    }
}

/// A descriptor, sometimes with a platform, with plausible and implausible fields.
fn descriptor() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("application/vnd.oci.image.manifest.v1+json".to_string()),
            ".{0,10}"
        ],
        prop_oneof!["sha256:[0-9a-f]{64}", ".{0,16}"],
        any::<i64>(),
        prop::option::of((
            prop_oneof!["linux", "windows", "unknown", "[a-z]{0,5}"],
            prop_oneof!["amd64", "arm64", "arm", "unknown", "[a-z0-9]{0,5}"],
            prop::option::of(prop_oneof!["v7", "v8", "[a-z0-9]{0,3}"]),
        )),
    )
        .prop_map(|(media_type, digest, size, platform)| {
            let mut d = json!({"mediaType": media_type, "digest": digest, "size": size});
            if let Some((os, arch, variant)) = platform {
                d["platform"] = json!({"os": os, "architecture": arch, "variant": variant});
            }
            d
        })
}

fn manifest_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (prop::collection::vec(descriptor(), 0..5), any::<bool>()).prop_map(|(m, ok)| {
            json!({"schemaVersion": if ok { 2 } else { 1 }, "manifests": m})
                .to_string()
                .into_bytes()
        }),
        (descriptor(), prop::collection::vec(descriptor(), 0..3)).prop_map(|(config, layers)| {
            json!({"schemaVersion": 2, "config": config, "layers": layers})
                .to_string()
                .into_bytes()
        }),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(config(30_000))]

    #[test]
    fn manifests_and_indexes_parse_or_are_refused_in_one_line(
        body in manifest_body(),
        want in "[a-z]{0,5}/[a-z0-9]{0,5}(/v[0-9])?",
    ) {
        let fetched = Fetched {
            digest: Digest::of(&body),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            body,
        };
        match Manifest::parse(&fetched) {
            Ok(Manifest::Index(index)) => {
                for p in manifest::platforms(&index) {
                    prop_assert!(p.contains('/'));
                }
                if let Ok(want) = Platform::try_from(want) {
                    match manifest::select(&index, &want) {
                        Ok(entry) => {
                            if let Err(m) = manifest::digest_of(entry) {
                                assert_one_line(&m);
                            }
                        }
                        Err(m) => assert_one_line(&m),
                    }
                }
            }
            Ok(Manifest::Image(image)) => {
                if let Err(m) = manifest::digest_of(image.config()) {
                    assert_one_line(&m);
                }
            }
            Err(message) => assert_one_line(&message),
        }
    }
}

/// A kubeconfig: the YAML of `kubectl config view` with random holes and wrong values, or any
/// text. Never `exec` or `auth-provider` users: loading must not run anything.
fn kubeconfig() -> impl Strategy<Value = String> {
    let server = prop_oneof![
        Just("https://127.0.0.1:1".to_string()),
        "(https?|ftp)://[a-z0-9.:]{0,20}",
        ".{0,12}",
    ];
    let user = prop_oneof![
        Just(json!({"token": SECRET})),
        Just(json!({"username": "u", "password": SECRET})),
        Just(json!({"client-key-data": SECRET, "client-certificate-data": SECRET})),
        Just(json!({"token": [SECRET]})),
        Just(json!({"tokenFile": "/nonexistent/irr-fuzz-token"})),
    ];
    let structured = (
        server,
        user,
        prop::option::of(prop_oneof![Just(SECRET.to_string()), "[A-Za-z0-9+/=]{0,16}"]),
        prop_oneof!["c", "missing", ""],
        any::<bool>(),
    )
        .prop_map(|(server, user, ca, context, insecure)| {
            let mut cluster = json!({"server": server, "insecure-skip-tls-verify": insecure});
            if let Some(ca) = ca {
                cluster["certificate-authority-data"] = json!(ca);
            }
            json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
                "current-context": context,
            })
            .to_string()
        });
    prop_oneof![
        4 => structured,
        1 => ".{0,40}".prop_map(|s| format!("{s}{SECRET}")),
        1 => "[a-z-]{1,10}: [ -~]{0,20}\n[a-z-]{1,10}:\n  - ".prop_map(|s| format!("{s}{SECRET}")),
    ]
}

proptest! {
    #![proptest_config(config(3_000))]

    #[test]
    fn kubeconfigs_load_or_are_refused_naming_the_key_without_secrets(
        text in kubeconfig(),
        context in prop::option::of(prop_oneof!["c", "other"]),
    ) {
        let mut source: Source = serde_json::from_value(json!({"repository": "r"})).unwrap();
        source.kubeconfig = Some(serde_json::from_value(json!(text)).unwrap());
        source.context = context;
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Err(e) = runtime.block_on(cluster::connect(&source, &Default::default())) {
            let message = e.to_string();
            assert_one_line(&message);
            prop_assert!(
                message.starts_with("source.kubeconfig: ")
                    || message.starts_with("source.context: ")
                    || message.starts_with("kubernetes: cannot set up a client for "),
                "{}",
                message
            );
        }
    }
}

#[test]
fn the_properties_can_fail() {
    // The one-line rule is not vacuous: a message with a newline or the secret is caught.
    for bad in ["a\nb".to_string(), format!("token {SECRET}")] {
        assert!(std::panic::catch_unwind(|| assert_one_line(&bad)).is_err());
    }
}
