//! `source.verify` against the real cosign CLI and a real registry on loopback: `check` emits only
//! digests with an acceptable signature, `in` and `out` refuse the others, and `out` deploys the
//! signed ones to a real control plane.
//!
//! Key signatures are made here with `cosign generate-key-pair` and `cosign sign
//! --tlog-upload=false`. A keyless signature needs Fulcio, an OIDC identity and Rekor, which
//! cannot be had offline, so the keyless tests use a recorded real one (GitHub Actions identity,
//! public-good Sigstore; provenance in tests/fixtures/keyless/README.md) pushed to the loopback
//! registry exactly as cosign stored it.

use serde_json::{Value, json};
use testbed::cluster::ControlPlane;
use testbed::cosign::{Cosign, KeyPair};
use testbed::registry::{Auth, Credentials, ImageSpec, Layout, Registry};
use testbed::step::{self, StepResult};

const CHECK: &str = env!("CARGO_BIN_EXE_check");
const IN: &str = env!("CARGO_BIN_EXE_in");
const OUT: &str = env!("CARGO_BIN_EXE_out");

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keyless");
/// The image the recorded keyless signature signs (an index on Docker Hub).
const KEYLESS_REPO: &str = "salrashid123/server_image";
const KEYLESS_DIGEST: &str =
    "sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321";
const KEYLESS_IDENTITY: &str = "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// `source:` for `name:main` on `registry` (with its credentials, if it wants any).
fn source(registry: &Registry, name: &str, verify: Value) -> Value {
    let mut source = json!({"repository": registry.repository(name), "tag": "main", "insecure": true, "verify": verify});
    if let Some(c) = registry.credentials() {
        source["username"] = c.username.clone().into();
        source["password"] = c.password.clone().into();
    }
    source
}

fn keys(keys: &[&KeyPair]) -> Value {
    json!({"public_keys": keys.iter().map(|k| k.public_pem.clone()).collect::<Vec<_>>()})
}

fn check(source: &Value, version: Option<&str>) -> StepResult {
    step::check(CHECK, source, version)
}

fn versions(result: &StepResult) -> Vec<String> {
    let list = result.json();
    let list = list.as_array().expect("a list");
    list.iter()
        .map(|v| v["digest"].as_str().expect("digest").to_string())
        .collect()
}

fn get(source: &Value, digest: &str) -> StepResult {
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "version": {"digest": digest}});
    step::run(IN, Some(dir.path()), &request, &[])
}

/// Pushes a fresh image to `name:main`; returns its digest.
fn push(registry: &Registry, name: &str, revision: &str) -> String {
    registry.push(&Layout::image(&ImageSpec::new(revision)), name, "main")
}

/// `repo@digest` of `app` on `registry`, as cosign and the cluster name it.
fn image(registry: &Registry, digest: &str) -> String {
    format!("{}@{digest}", registry.repository("app"))
}

/// A registry whose `app:main` is a build signed with the key `ci` of a cosign home.
struct Signed {
    registry: Registry,
    cosign: Cosign,
    key: KeyPair,
    digest: String,
}

fn signed_app(auth: Auth, revision: &str) -> Signed {
    let registry = Registry::start(auth);
    let cosign = Cosign::new();
    cosign.login(&registry);
    let key = cosign.generate_key_pair("ci");
    let digest = push(&registry, "app", revision);
    cosign.sign(&key, &image(&registry, &digest));
    Signed {
        registry,
        cosign,
        key,
        digest,
    }
}

#[test]
fn check_emits_only_signed_digests_and_in_verifies_again() {
    let Signed {
        registry,
        cosign,
        key,
        digest: signed,
    } = signed_app(Auth::Open, "signed");
    let image = |digest: &str| image(&registry, digest);
    let source = source(&registry, "app", keys(&[&key]));

    let first = check(&source, None);
    assert_eq!(versions(&first), [signed.as_str()], "{}", first.stderr);
    assert!(
        first
            .stderr
            .starts_with("image-rollout-resource 0.1.0 check\n"),
        "the version is the first stderr line: {}",
        first.stderr
    );
    assert!(get(&source, &signed).ok());

    // The tag moves to an unsigned build: check keeps reporting the signed one only.
    let unsigned = push(&registry, "app", "unsigned");
    assert!(cosign.verifies(&key, &image(&signed)));
    assert!(!cosign.verifies(&key, &image(&unsigned)), "cosign agrees");
    let moved = check(&source, Some(&signed));
    assert_eq!(versions(&moved), [signed.as_str()], "{}", moved.stderr);
    let skipped: Vec<&str> = moved
        .stderr
        .lines()
        .filter(|l| l.starts_with("skipping"))
        .collect();
    assert_eq!(
        skipped,
        [format!(
            "skipping {}: it has no cosign signature (no tag {tag}.sig; no Sigstore bundle among its referrers: no referrers API, nothing under the tag {tag})",
            image(&unsigned),
            tag = unsigned.replace(':', "-")
        )],
        "{}",
        moved.stderr
    );
    // Defence in depth: `in` of the unsigned digest (a pinned version, `fly check-resource
    // --from`) refuses too.
    let line = get(&source, &unsigned).error_line();
    assert!(
        line.starts_with(&format!(
            "error: source.verify: refusing {}: it has no cosign signature",
            image(&unsigned)
        )),
        "{line}"
    );

    // Once CI signs it, the next check reports it.
    cosign.sign(&key, &image(&unsigned));
    assert_eq!(versions(&check(&source, Some(&signed))), [signed, unsigned]);
}

/// Following releases, each version reported is verified: an unsigned newest release is left
/// out (the signature tags `sha256-….sig` in the listing are no versions), and reported once signed.
#[test]
fn a_release_is_reported_only_once_signed() {
    let Signed {
        registry,
        cosign,
        key,
        digest: first,
    } = signed_app(Auth::Open, "1.0.0");
    registry.tag("app", &first, "1.0.0", false);
    let newer = registry.push(&Layout::image(&ImageSpec::new("1.1.0")), "app", "1.1.0");
    let mut source = source(&registry, "app", keys(&[&key]));
    source.as_object_mut().unwrap().remove("tag");
    source["semver_constraint"] = json!("1.x");
    let from_first = json!({"tag": "1.0.0", "digest": first});
    let check_from = |version: &Value| {
        step::run(
            CHECK,
            None,
            &json!({"source": source, "version": version}),
            &[],
        )
    };

    let unsigned = check_from(&from_first);
    assert_eq!(versions(&unsigned), [first.as_str()], "{}", unsigned.stderr);
    assert!(
        unsigned.stderr.contains(&format!(
            "skipping {}: it has no cosign signature",
            image(&registry, &newer)
        )),
        "{}",
        unsigned.stderr
    );
    cosign.sign(&key, &image(&registry, &newer));
    let signed = check_from(&from_first);
    assert_eq!(versions(&signed), [first, newer], "{}", signed.stderr);
}

#[test]
fn a_private_registry_with_a_token_realm_is_verified_with_the_check_s_token() {
    // A private ghcr.io package: the signature is pushed and read through the token realm.
    let credentials = Credentials::new("ci", "ci-password");
    let Signed {
        registry,
        key,
        digest,
        ..
    } = signed_app(Auth::Token(Some(credentials)), "private");
    let source = source(&registry, "app", keys(&[&key]));
    registry.reset_requests();
    let result = check(&source, None);
    assert_eq!(versions(&result), [digest.as_str()], "{}", result.stderr);
    // The signature costs its two GETs (manifest, payload blob) and no second token: it is in
    // the repository the check's token is for.
    let tag = digest.replace(':', "-") + ".sig";
    let requests = registry.requests();
    assert_eq!(
        requests[..4],
        [
            "HEAD /v2/app/manifests/main 401".to_string(),
            "GET /token 200".into(),
            "HEAD /v2/app/manifests/main 200".into(),
            format!("GET /v2/app/manifests/{tag} 200"),
        ],
        "{}",
        result.stderr
    );
    assert!(
        requests.len() == 5 && requests[4].starts_with("GET /v2/app/blobs/sha256:"),
        "{requests:?}"
    );
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let registry = Registry::start(Auth::Open);
    let cosign = Cosign::new();
    let trusted = cosign.generate_key_pair("trusted");
    let other = cosign.generate_key_pair("other");
    let digest = push(&registry, "app", "other-key");
    let image = format!("{}@{digest}", registry.repository("app"));
    cosign.sign(&other, &image);
    assert!(!cosign.verifies(&trusted, &image), "cosign agrees");

    let only_trusted = source(&registry, "app", keys(&[&trusted]));
    let result = check(&only_trusted, None);
    assert_eq!(versions(&result), Vec::<String>::new());
    assert!(
        result.stderr.contains(&format!(
            "skipping {image}: signature 1: not signed by any key in source.verify.public_keys"
        )),
        "{}",
        result.stderr
    );
    let line = get(&only_trusted, &digest).error_line();
    assert!(line.contains("not signed by any key"), "{line}");

    // Any one of several keys is enough (key rotation).
    let either = source(&registry, "app", keys(&[&trusted, &other]));
    assert_eq!(versions(&check(&either, None)), [digest.as_str()]);
    assert!(get(&either, &digest).ok());
}

#[test]
fn a_valid_signature_whose_payload_names_another_digest_is_refused() {
    let Signed {
        registry,
        cosign,
        key,
        digest: good,
    } = signed_app(Auth::Open, "good");
    let image = |digest: &str| image(&registry, digest);
    // A genuine signature by the trusted key, copied onto another digest: the signature
    // verifies, but what it vouches for is `good`.
    let evil = push(&registry, "app", "evil");
    cosign.sign_payload_of(&key, &image(&good), &image(&evil));
    assert!(!cosign.verifies(&key, &image(&evil)), "cosign agrees");

    let source = source(&registry, "app", keys(&[&key]));
    let result = check(&source, Some(&good));
    assert_eq!(versions(&result), [good.as_str()], "{}", result.stderr);
    assert!(
        result.stderr.contains(&format!(
            "skipping {}: signature 1: its payload signs {good}, not this digest",
            image(&evil)
        )),
        "{}",
        result.stderr
    );
    let line = get(&source, &evil).error_line();
    assert!(line.contains("its payload signs"), "{line}");
}

#[test]
fn bad_verify_config_is_named_before_any_request() {
    let registry = Registry::start(Auth::Open);
    push(&registry, "app", "config");
    let good = Cosign::new().generate_key_pair("good").public_pem;
    for (verify, expected) in [
        (
            json!({}),
            "error: source.verify: give public_keys, keyless, or both",
        ),
        (
            json!({"public_keys": [good, "not a key"]}),
            "error: source.verify.public_keys[1]: expected exactly one PEM `PUBLIC KEY` block",
        ),
        (
            json!({"public_keys": [good], "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1"}, {"predicate_type": "https://slsa.dev/provenance/v1", "source_ref": ""}]}),
            "error: source.verify.attestations[1]: source_ref is empty, which no attestation matches",
        ),
        (
            json!({"keyless": {"identity": "x", "issuer": "y", "trusted_root": "{"}}),
            "error: source.verify.keyless.trusted_root: not a Sigstore trusted_root.json",
        ),
        (
            json!({"public_keys": [], "keyles": {}}),
            "error: invalid request: source.verify.keyles: unknown field `keyles`",
        ),
        (
            json!({"keyless": {"identity": KEYLESS_IDENTITY, "issuer": GITHUB_ISSUER, "trusted_root": without_ct_logs()}}),
            "error: source.verify.keyless.trusted_root: it has no ECDSA CT log (ctlogs); keyless verification needs all three: give Sigstore's trusted_root.json whole",
        ),
    ] {
        let source = source(&registry, "app", verify);
        let line = check(&source, None).error_line();
        assert!(line.starts_with(expected), "{line}");
        assert_eq!(registry.requests(), Vec::<String>::new(), "{line}");
    }
}

/// The recorded keyless signature, pushed as cosign stored it (same payload blob and layer
/// annotations; the config blob, which nothing reads, is an empty JSON object).
fn push_keyless_signature(registry: &Registry) {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURE}/signature-manifest.json")).unwrap(),
    )
    .unwrap();
    let payload = std::fs::read(format!("{FIXTURE}/payload.json")).unwrap();
    let layer = &manifest["layers"][0];
    let layout = Layout::artifact(&[(
        layer["mediaType"].as_str().unwrap(),
        &payload,
        layer["annotations"].clone(),
    )]);
    let tag = KEYLESS_DIGEST.replace(':', "-") + ".sig";
    registry.push(&layout, KEYLESS_REPO, &tag);
}

fn trusted_root() -> String {
    std::fs::read_to_string(format!("{FIXTURE}/trusted_root.json")).unwrap()
}

/// The fixture's trusted root without its CT log (the SCT's signer).
fn without_ct_logs() -> String {
    let mut root: Value = serde_json::from_str(&trusted_root()).unwrap();
    root["ctlogs"] = json!([]);
    root.to_string()
}

fn keyless(identity: &str, issuer: &str) -> Value {
    json!({"keyless": {"identity": identity, "issuer": issuer, "trusted_root": trusted_root()}})
}

fn cp() -> &'static ControlPlane {
    ControlPlane::shared()
}

/// A namespace with deployment/web running `image`.
fn web(prefix: &str, image: &str) -> String {
    let ns = cp().namespace(prefix);
    cp().apply(
        &ns,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n        - {{name: app, image: \"{image}\"}}\n"
        ),
    );
    cp().rollout_status(&ns, "deploy/web");
    ns
}

fn app_image(ns: &str) -> String {
    cp().template_image(ns, "deploy/web")
}

fn out(source: &Value, ns: &str, digest: &str) -> StepResult {
    let mut source = source.clone();
    source["kubeconfig"] = cp().kubeconfig_yaml().into();
    source["namespace"] = ns.into();
    source["deployment"] = "web".into();
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "params": {"digest": digest, "timeout": "60s"}});
    step::run(OUT, Some(dir.path()), &request, &[])
}

#[test]
fn out_deploys_a_signed_digest_and_refuses_an_unsigned_one() {
    let Signed {
        registry,
        key,
        digest: signed,
        ..
    } = signed_app(Auth::Open, "deploy-signed");
    let repository = registry.repository("app");
    let unsigned = push(&registry, "app", "deploy-unsigned");
    let source = source(&registry, "app", keys(&[&key]));
    let ns = web("verify-out", &format!("{repository}:old"));

    let line = out(&source, &ns, &unsigned).error_line();
    assert!(
        line.starts_with(&format!(
            "error: source.verify: refusing {repository}@{unsigned}: it has no cosign signature"
        )),
        "{line}"
    );
    assert_eq!(app_image(&ns), format!("{repository}:old"), "untouched");

    let result = out(&source, &ns, &signed);
    assert_eq!(result.json()["version"]["digest"], signed.as_str());
    assert!(
        result
            .stderr
            .contains(&format!("signature verified: {repository}@{signed}")),
        "{}",
        result.stderr
    );
    assert_eq!(app_image(&ns), format!("{repository}@{signed}"));
}

#[test]
fn keyless_signature_is_matched_on_identity_and_issuer() {
    let registry = Registry::start(Auth::Open);
    push_keyless_signature(&registry);
    let repository = registry.repository(KEYLESS_REPO);
    let reference = format!("{repository}@{KEYLESS_DIGEST}");

    // The real cosign accepts the recorded signature with the same trusted root and policy,
    // its SCT included; without the root's CT log it refuses, as `source.verify` does
    // (`bad_verify_config_is_named_before_any_request`).
    let cosign = Cosign::new();
    let cosign_verify = |root: &str| -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), root).unwrap();
        let out = cosign
            .command()
            .arg("verify")
            .arg("--trusted-root")
            .arg(file.path())
            .args(["--certificate-identity", KEYLESS_IDENTITY])
            .args(["--certificate-oidc-issuer", GITHUB_ISSUER])
            .args(["--allow-http-registry", "--allow-insecure-registry"])
            .arg(&reference)
            .output()
            .unwrap();
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    };
    assert_eq!(cosign_verify(&trusted_root()), Ok(()));
    let refused = cosign_verify(&without_ct_logs()).unwrap_err();
    assert!(
        refused.contains("only able to verify 0 SCT entries"),
        "{refused}"
    );

    let ns = web("verify-keyless", &format!("{repository}:old"));
    let wrong = [
        (
            KEYLESS_IDENTITY.replace("v0.0.30", "v0.0.31"),
            GITHUB_ISSUER.to_string(),
        ),
        (
            KEYLESS_IDENTITY.to_string(),
            "https://accounts.google.com".to_string(),
        ),
    ];
    for (identity, issuer) in wrong {
        let source = source(&registry, KEYLESS_REPO, keyless(&identity, &issuer));
        let line = out(&source, &ns, KEYLESS_DIGEST).error_line();
        assert!(
            line.contains(&format!(
                "signature 1: signed by `{KEYLESS_IDENTITY}` (issuer `{GITHUB_ISSUER}`), not by source.verify.keyless's `{identity}` (issuer `{issuer}`)"
            )),
            "{line}"
        );
        assert_eq!(app_image(&ns), format!("{repository}:old"), "untouched");
    }

    // A key-only verify block does not accept a keyless signature.
    let cosign_key = cosign.generate_key_pair("unrelated");
    let line = out(
        &source(&registry, KEYLESS_REPO, keys(&[&cosign_key])),
        &ns,
        KEYLESS_DIGEST,
    )
    .error_line();
    assert!(line.contains("source.verify.keyless is not set"), "{line}");

    let source = source(
        &registry,
        KEYLESS_REPO,
        keyless(KEYLESS_IDENTITY, GITHUB_ISSUER),
    );
    let result = out(&source, &ns, KEYLESS_DIGEST);
    assert_eq!(result.json()["version"]["digest"], KEYLESS_DIGEST);
    assert_eq!(app_image(&ns), reference);
}

/// What `in` printed about how it found the signature: `(LAYOUT, N requests)`.
fn verified_line(result: &StepResult) -> String {
    assert!(result.ok(), "in failed:\n{}", result.stderr);
    result
        .stderr
        .lines()
        .find(|l| l.starts_with("signature verified: "))
        .unwrap_or_else(|| panic!("no verified line:\n{}", result.stderr))
        .to_string()
}

/// Real cosign bundles, as each version signs them by default or when asked, on a registry
/// with the referrers API and on Distribution 2.8 (the tag schema): the key's signature is
/// verified by `in` and deployed by `out`; an unsigned build and one signed by another key are
/// refused; a SLSA provenance
/// attestation meets a policy naming its builder and source and fails one naming others.
fn bundles_on(registry: Registry, cosign: Cosign, layout: &str) {
    let key = cosign.generate_key_pair("ci");
    let other = cosign.generate_key_pair("other");
    let signed = push(&registry, "app", "signed");
    cosign.sign_bundle(&key, &image(&registry, &signed));
    let by_other = push(&registry, "app", "by-other");
    cosign.sign_bundle(&other, &image(&registry, &by_other));
    let unsigned = push(&registry, "app", "unsigned");
    let keyed = source(&registry, "app", keys(&[&key]));

    let line = verified_line(&get(&keyed, &signed));
    assert!(line.contains(&format!("({layout}, ")), "{line}");
    eprintln!("{line}");
    let refused = get(&keyed, &by_other).error_line();
    assert!(
        refused.contains("bundle 1: not signed by any key in source.verify.public_keys"),
        "{refused}"
    );
    let refused = get(&keyed, &unsigned).error_line();
    assert!(
        refused.contains("it has no cosign signature (no tag "),
        "{refused}"
    );
    // check reports the signed digest and skips the others, naming why.
    let checked = check(&keyed, Some(&signed));
    assert_eq!(versions(&checked), [signed.as_str()], "{}", checked.stderr);
    // out deploys it, and refuses the unsigned one before touching the Deployment.
    let repository = registry.repository("app");
    let ns = web("bundle", &format!("{repository}:old"));
    out(&keyed, &ns, &unsigned).error_line();
    assert_eq!(app_image(&ns), format!("{repository}:old"), "untouched");
    out(&keyed, &ns, &signed).json();
    assert_eq!(app_image(&ns), format!("{repository}@{signed}"));

    // SLSA provenance, attested with the key (`cosign attest --type slsaprovenance`).
    let provenance = r#"{"builder": {"id": "https://github.com/o/app/.github/workflows/build.yml@refs/heads/main"}, "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1", "invocation": {"configSource": {"uri": "git+https://github.com/o/app@refs/heads/main", "digest": {"sha1": "0123456789abcdef0123456789abcdef01234567"}, "entryPoint": ".github/workflows/build.yml"}}}"#;
    cosign.attest(
        &key,
        &image(&registry, &signed),
        "slsaprovenance",
        provenance,
    );
    let policy = |builder: &str, repository: &str| {
        let mut verify = keys(&[&key]);
        verify["attestations"] = json!([{
            "predicate_type": "https://slsa.dev/provenance/v0.2",
            "builder_id": builder,
            "source_repository": repository,
            "source_ref": "refs/heads/main",
        }]);
        source(&registry, "app", verify)
    };
    let builder = "https://github.com/o/app/.github/workflows/build.yml@refs/heads/main";
    verified_line(&get(&policy(builder, "https://github.com/o/app"), &signed));
    let refused = get(
        &policy("https://evil.example/builder", "https://github.com/o/app"),
        &signed,
    )
    .error_line();
    assert!(
        refused.contains("source.verify.attestations[0] (https://slsa.dev/provenance/v0.2): signed by source.verify.public_keys[0]: its builder id is"),
        "{refused}"
    );
    let refused = get(&policy(builder, "https://github.com/evil/app"), &signed).error_line();
    assert!(refused.contains("its source repository is `https://github.com/o/app`, not source_repository's `https://github.com/evil/app`"), "{refused}");
    // A digest with a signature but no provenance does not meet the policy.
    let refused = get(&policy(builder, "https://github.com/o/app"), &by_other).error_line();
    assert!(
        refused.contains("source.verify.attestations[0]"),
        "{refused}"
    );
}

#[test]
fn cosign_v2_bundles_verify_with_the_referrers_api() {
    bundles_on(
        Registry::start_referrers(),
        Cosign::new(),
        "Sigstore bundle (referrers API)",
    );
}

#[test]
fn cosign_v2_bundles_verify_with_the_referrers_tag_schema() {
    bundles_on(
        Registry::start(Auth::Open),
        Cosign::new(),
        "Sigstore bundle (referrers tag schema)",
    );
}

#[test]
fn cosign_v3_bundles_verify_with_the_referrers_api() {
    bundles_on(
        Registry::start_referrers(),
        Cosign::v3(),
        "Sigstore bundle (referrers API)",
    );
}

#[test]
fn cosign_v3_bundles_verify_with_the_referrers_tag_schema() {
    bundles_on(
        Registry::start(Auth::Open),
        Cosign::v3(),
        "Sigstore bundle (referrers tag schema)",
    );
}

/// Bundles cosign would not attach, on both layouts: a valid one made for another digest, and
/// a tampered envelope of a valid one, are refused; the untouched one verifies.
#[test]
fn a_bundle_for_another_digest_or_a_tampered_envelope_is_refused() {
    for registry in [Registry::start_referrers(), Registry::start(Auth::Open)] {
        let cosign = Cosign::v3();
        let key = cosign.generate_key_pair("ci");
        let source = source(&registry, "app", keys(&[&key]));
        let [a, b, c] = ["a", "b", "c"].map(|r| push(&registry, "app", r));
        // A DSSE bundle whose subject is a's digest: attest-blob of a's manifest bytes.
        let bundle = cosign.attest_blob(&key, &registry.manifest_bytes("app", &a));
        registry.attach_bundle("app", &a, &bundle);
        verified_line(&get(&source, &a));

        registry.attach_bundle("app", &b, &bundle);
        let refused = get(&source, &b).error_line();
        assert!(
            refused.contains(&format!(
                "bundle 1: not about this digest: its statement's subjects are {a}"
            )),
            "{refused}"
        );

        let mut tampered: Value = serde_json::from_slice(&bundle).unwrap();
        let payload = tampered["dsseEnvelope"]["payload"]
            .as_str()
            .unwrap()
            .to_string();
        let mut statement: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &payload).unwrap(),
        )
        .unwrap();
        statement["subject"][0]["digest"]["sha256"] = json!(c.trim_start_matches("sha256:"));
        tampered["dsseEnvelope"]["payload"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            serde_json::to_vec(&statement).unwrap()
        ));
        registry.attach_bundle("app", &c, &serde_json::to_vec(&tampered).unwrap());
        let refused = get(&source, &c).error_line();
        assert!(
            refused.contains("bundle 1: not signed by any key in source.verify.public_keys (its envelope's signature does not verify)"),
            "{refused}"
        );
    }
}

/// A registry whose referrers answer is garbage, forbidden or endless: `in` fails in one line
/// naming the registry and the referrers request, within bounds, and a 403 is not retried.
#[test]
fn a_broken_referrers_answer_fails_in_one_line() {
    use testbed::registry::{Fault, Times};
    let registry = Registry::start_referrers();
    let cosign = Cosign::v3();
    let key = cosign.generate_key_pair("ci");
    let digest = push(&registry, "app", "signed");
    cosign.sign_bundle(&key, &image(&registry, &digest));
    registry.reset_requests();
    let source = source(&registry, "app", keys(&[&key]));
    let path = format!("/v2/app/referrers/{digest}");
    let forbidden = Fault::Status {
        status: 403,
        retry_after: None,
    };
    for (fault, expect) in [
        (Fault::Garbage, "not an OCI image index"),
        (forbidden, "HTTP 403"),
        (Fault::Huge, "larger than"),
    ] {
        // Once: a client that retried would succeed the second time, and fail the test.
        registry.inject(&path, fault, Times::Next(1));
        let line = get(&source, &digest).error_line();
        assert!(
            line.contains(&format!("registry {}", registry.host()))
                && line.contains(&format!("referrers of {digest}"))
                && line.contains(expect),
            "{line}"
        );
        let referrers = registry
            .requests()
            .iter()
            .filter(|r| r.contains("/referrers/"))
            .count();
        assert_eq!(referrers, 1, "{line}: {:?}", registry.requests());
        registry.reset_requests();
    }
    verified_line(&get(&source, &digest));
}
