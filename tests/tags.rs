//! Tag policies (`semver_constraint`, `variant`, `pre_releases`, `pre_release_prefixes`,
//! `tag_regex`): the built `check` against the real Distribution registry holding a few hundred
//! tags of every kind, judged by registry-image-resource's own `check` (v1.18.0, from the
//! Concourse bundle) run on the same registry with the same keys and cursor.
//!
//! Where we differ on purpose, the comparison says how (README, "Tag policies"):
//! - we report the newest version only, or the cursor and the newest; it reports every
//!   candidate (all of them on a first check, the ones above the cursor after). So ours must be
//!   its first and last;
//! - `tag_regex` matches whole tags with us, anywhere in the tag with it;
//! - of the tags `tag_regex` matches, our newest is the highest in natural order; its newest is
//!   the last the registry lists, and Distribution 2.8 lists in no order. So for `tag_regex`,
//!   ours must be the natural highest of its set.

use std::collections::BTreeMap;
use std::path::Path;

use image_rollout_resource::policy::select::natural;
use serde_json::{Value, json};
use testbed::concourse::Bundle;
use testbed::registry::{Auth, Fault, ImageSpec, Layout, Registry, Times};
use testbed::step::{self, StepResult};

const CHECK: &str = env!("CARGO_BIN_EXE_check");
const IN: &str = env!("CARGO_BIN_EXE_in");

/// A registry with one repository, `app`, holding [`tags`], and the digest of each tag.
struct Repo {
    registry: Registry,
    digests: BTreeMap<String, String>,
}

/// The tags of the fixture: 300 releases, `v`-prefixed ones, aliases (`1`, `1.14` on the same
/// image as `1.14.4`), pre-releases of several words, variants, and tags that are no version.
/// Returns `(tag, alias of)` pairs: an alias shares its target's digest, others get their own.
fn tags() -> Vec<(String, Option<&'static str>)> {
    let mut tags = Vec::new();
    for major in 0..=3 {
        for minor in 0..=14 {
            for patch in 0..=4 {
                tags.push((format!("{major}.{minor}.{patch}"), None));
            }
        }
    }
    let own = [
        "v4.0.0",
        "v4.1.0",
        "v4.1.1",
        "4.2.0-alpha",
        "4.2.0-beta.1",
        "4.2.0-rc.1",
        "4.2.0-rc.2",
        "4.2.0-dev.1",
        "4.2.0-rc.1-alpine",
        "5.0.0-rc.1",
        "2.5.0-rc.1",
        "3.14.4-alpine",
        "4.0.0-alpine",
        "4.1.1-alpine",
        "main",
        "sha-0a1b2c3",
        "1.2.3.4",
        "release-1.0",
        "v",
        "01.2.3",
        "4.1.1_hotfix",
        "4.x",
    ];
    tags.extend(own.iter().map(|t| (t.to_string(), None)));
    let aliases = [
        ("1", "1.14.4"),
        ("1.14", "1.14.4"),
        ("3", "3.14.4"),
        ("3.14", "3.14.4"),
        ("v4.1", "v4.1.1"),
        ("4", "v4.1.1"),
        ("latest", "v4.1.1"),
        ("alpine", "4.1.1-alpine"),
    ];
    tags.extend(aliases.iter().map(|(t, of)| (t.to_string(), Some(*of))));
    tags
}

impl Repo {
    fn new() -> Repo {
        let registry = Registry::start(Auth::Open);
        let base = registry.push(&Layout::image(&ImageSpec::new("base")), "app", "base");
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        for (tag, alias) in tags() {
            let digest = match alias {
                Some(of) => registry.tag("app", &digests[of].clone(), &tag, false),
                None => registry.tag("app", &base, &tag, true),
            };
            digests.insert(tag, digest);
        }
        registry.reset_requests();
        Repo { registry, digests }
    }

    fn source(&self, keys: Value) -> Value {
        let mut source = json!({"repository": self.registry.repository("app"), "insecure": true});
        source
            .as_object_mut()
            .unwrap()
            .extend(keys.as_object().unwrap().clone());
        source
    }

    /// `{tag, digest}` of a tag of the fixture.
    fn version(&self, tag: &str) -> Value {
        json!({"tag": tag, "digest": self.digests[tag]})
    }
}

fn check(source: &Value, cursor: Option<&Value>) -> StepResult {
    let mut request = json!({"source": source});
    if let Some(cursor) = cursor {
        request["version"] = cursor.clone();
    }
    step::run(CHECK, None, &request, &[])
}

/// The tags a check reported, oldest first (each checked to be `{digest, tag}`).
fn reported(result: &StepResult) -> Vec<Value> {
    let Value::Array(list) = result.json() else {
        panic!("check printed no list: {}", result.stdout)
    };
    for v in &list {
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["digest", "tag"], "version {v}");
    }
    list
}

fn tags_of(versions: &[Value]) -> Vec<&str> {
    versions
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect()
}

#[test]
fn each_policy_follows_the_newest_tag_it_allows() {
    let repo = Repo::new();
    let listed = repo.digests.len() + 1; // and `base`
    assert!(listed > 300, "a few hundred tags: {listed}");
    for (keys, newest) in [
        (json!({"semver_constraint": "< 2"}), Some("1.14.4")),
        (json!({"semver_constraint": "~1.2"}), Some("1.2.4")),
        // `v` prefixes count; `4`, `v4.1`, `4.x`, `4.1.1_hotfix` and the pre-releases do not win.
        (json!({"semver_constraint": ">= 4"}), Some("v4.1.1")),
        (json!({"semver_constraint": "1.2.3 - 1.3"}), Some("1.3.4")),
        (
            json!({"semver_constraint": "^0.5 || >= 3.14.2, < 3.14.4"}),
            Some("3.14.3"),
        ),
        (
            json!({"semver_constraint": "!= 3.14.4, >= 3.14, < 4"}),
            Some("3.14.3"),
        ),
        // A constraint that admits pre-releases is not enough: pre_releases must say so too.
        (json!({"semver_constraint": ">= 4.2.0-0"}), None),
        (json!({"pre_releases": true}), Some("5.0.0-rc.1")),
        (
            json!({"pre_releases": true, "semver_constraint": "< 5.0.0-0"}),
            Some("4.2.0-rc.2"),
        ),
        // `dev` is no pre-release word unless listed; then it sorts above `beta`.
        (
            json!({"pre_releases": true, "pre_release_prefixes": ["dev"], "semver_constraint": "< 4.2.0-rc"}),
            Some("4.2.0-dev.1"),
        ),
        (json!({"variant": "alpine"}), Some("4.1.1-alpine")),
        (
            json!({"variant": "alpine", "pre_releases": true}),
            Some("4.2.0-rc.1-alpine"),
        ),
        (
            json!({"variant": "alpine", "semver_constraint": "< 4"}),
            Some("3.14.4-alpine"),
        ),
        (json!({"tag_regex": "v4\\.[0-9]+\\.[0-9]+"}), Some("v4.1.1")),
        (json!({"tag_regex": "1\\.14\\.[0-9]"}), Some("1.14.4")),
        // Whole tags only: `4.1.1-alpine`, `v4.1.1` and `4.1.1_hotfix` contain it, none is it.
        (json!({"tag_regex": "4\\.1\\.1"}), None),
    ] {
        repo.registry.reset_requests();
        let result = check(&repo.source(keys.clone()), None);
        let versions = reported(&result);
        let expected: Vec<Value> = newest.iter().map(|t| repo.version(t)).collect();
        assert_eq!(versions, expected, "{keys}\n{}", result.stderr);
        // One listing, one HEAD of the newest: not one request per tag.
        let requests = repo.registry.requests();
        let heads = usize::from(newest.is_some());
        assert_eq!(
            (
                requests.len(),
                requests.iter().filter(|r| r.starts_with("HEAD")).count()
            ),
            (1 + heads, heads),
            "{keys}: {requests:?}"
        );
        assert!(
            requests[0].starts_with("GET /v2/app/tags/list 200"),
            "{requests:?}"
        );
    }
}

#[test]
fn a_cursor_is_kept_while_its_tag_still_has_its_digest() {
    let repo = Repo::new();
    let source = repo.source(json!({"semver_constraint": "~3.14"}));
    // Concourse has 3.14.1: it comes first, then the newest; nothing in between.
    let result = check(&source, Some(&repo.version("3.14.1")));
    assert_eq!(tags_of(&reported(&result)), ["3.14.1", "3.14.4"]);
    assert_eq!(repo.registry.requests().len(), 3, "list, and two HEADs");
    // The newest is the cursor: it alone.
    let result = check(&source, Some(&repo.version("3.14.4")));
    assert_eq!(tags_of(&reported(&result)), ["3.14.4"]);
    // `3.14` is the same image as 3.14.4 under a less specific tag: that image, under the more
    // specific tag (as registry-image-resource reports it).
    let result = check(&source, Some(&repo.version("3.14")));
    assert_eq!(tags_of(&reported(&result)), ["3.14.4"]);
    // The cursor's tag moved to another image: it is gone, the newest alone.
    let moved = json!({"tag": "3.14.1", "digest": repo.digests["3.14.2"]});
    let result = check(&source, Some(&moved));
    assert_eq!(tags_of(&reported(&result)), ["3.14.4"]);
    // A cursor from before tags were reported (a digest only): the newest alone.
    let old = json!({"digest": repo.digests["3.14.1"]});
    let result = check(&source, Some(&old));
    assert_eq!(tags_of(&reported(&result)), ["3.14.4"]);
}

#[test]
fn in_writes_the_tag_it_was_given() {
    let repo = Repo::new();
    let source = repo.source(json!({"semver_constraint": "~3.14"}));
    let dir = tempfile::tempdir().unwrap();
    let request = json!({"source": source, "version": repo.version("3.14.4")});
    let result = step::run(IN, Some(dir.path()), &request, &[]);
    assert_eq!(result.json()["version"], repo.version("3.14.4"));
    let tag = std::fs::read_to_string(dir.path().join("tag")).unwrap();
    assert_eq!(tag, "3.14.4");
}

#[test]
fn every_page_of_tags_is_read() {
    // Distribution 2.8 answers the whole list in one page whatever `n` asks; registries that
    // paginate (ghcr.io, Docker Hub, Distribution 3) link the next page. The proxy pages the
    // real answer the way they do, which 2.8 itself cannot be made to do.
    let registry = Registry::start(Auth::Open);
    let base = registry.push(&Layout::image(&ImageSpec::new("base")), "app", "base");
    for minor in 0..30 {
        registry.tag("app", &base, &format!("1.{minor}.0"), true);
    }
    registry.inject("/v2/app/tags/list", Fault::Paginate(7), Times::Always);
    let source = json!({"repository": registry.repository("app"), "insecure": true, "semver_constraint": "1"});
    registry.reset_requests();
    let result = check(&source, None);
    assert_eq!(tags_of(&reported(&result)), ["1.29.0"], "{}", result.stderr);
    let pages = registry
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /v2/app/tags/list"))
        .count();
    assert_eq!(pages, 5, "31 tags in pages of 7: {:?}", registry.requests());
}

#[test]
fn bad_keys_and_refusing_registries_fail_in_one_line() {
    let repo = Repo::new();
    for (keys, expected) in [
        (
            json!({"semver_constraint": ">= 1.2, < 2 || banana"}),
            "error: source.semver_constraint: at column 16: \"banana\" is not a comparison",
        ),
        (
            json!({"tag_regex": "v(4"}),
            "error: source.tag_regex: at column 2: unclosed group",
        ),
        (
            json!({"tag": "main", "semver_constraint": "1"}),
            "error: source.tag: cannot be combined with source.semver_constraint",
        ),
        (
            json!({"semver_constraint": "1", "tag_regex": "v.*"}),
            "error: source.tag_regex: cannot be combined with source.semver_constraint",
        ),
        (
            json!({"tag_regex": "v.*", "created_at_sort": true}),
            "error: source.created_at_sort: is not supported",
        ),
        (
            json!({"semver_constraint": 1.2}),
            "error: invalid request: source.semver_constraint: invalid type",
        ),
    ] {
        let line = check(&repo.source(keys.clone()), None).error_line();
        assert!(line.starts_with(expected), "{keys}: {line}");
    }
    assert!(
        repo.registry.requests().is_empty(),
        "config errors fail before any request"
    );

    let source = repo.source(json!({"semver_constraint": "1"}));
    for (status, expected) in [(404, "tags list: HTTP 404"), (403, "tags list: HTTP 403")] {
        repo.registry.inject(
            "/v2/app/tags/list",
            Fault::Status {
                status,
                retry_after: None,
            },
            Times::Next(1),
        );
        repo.registry.reset_requests();
        let line = check(&source, None).error_line();
        let host = repo.registry.host();
        assert!(
            line.starts_with(&format!("error: registry {host}: {expected}")),
            "{line}"
        );
        // A refusal is not retried as if it were transient.
        assert_eq!(
            repo.registry.requests().len(),
            1,
            "{:?}",
            repo.registry.requests()
        );
    }

    // A repository nothing was pushed to yet: no versions, not an error.
    let empty = json!({"repository": repo.registry.repository("nothing"), "insecure": true, "semver_constraint": "1"});
    let result = check(&empty, None);
    assert_eq!(reported(&result), Vec::<Value>::new());
    assert!(
        result.stderr.contains("does not exist yet"),
        "{}",
        result.stderr
    );
}

/// registry-image-resource's `check` on `request`, run as ours is: what it reported, oldest
/// first.
fn oracle(check: &Path, request: &Value) -> Vec<Value> {
    let result = step::run(check.to_str().expect("a UTF-8 path"), None, request, &[]);
    serde_json::from_value(result.json()).expect("a JSON list")
}

#[test]
fn registry_image_resource_reports_the_same_versions() {
    let Some(bundle) = Bundle::find("the registry-image-resource comparison of tags/policies")
    else {
        return;
    };
    let theirs = bundle.registry_image_check();
    let repo = Repo::new();
    let cases = [
        json!({"semver_constraint": "< 2"}),
        json!({"semver_constraint": "~1.2"}),
        json!({"semver_constraint": ">= 4"}),
        json!({"semver_constraint": "1.2.3 - 1.3"}),
        json!({"semver_constraint": "^0.5 || >= 3.14.2, < 3.14.4"}),
        json!({"semver_constraint": "!= 3.14.4, >= 3.14, < 4"}),
        json!({"semver_constraint": ">= 3, < 3.14"}),
        json!({"semver_constraint": "> 1.2, <= 2.3"}),
        json!({"semver_constraint": "*"}),
        json!({"semver_constraint": "=2.x"}),
        json!({"semver_constraint": "~> 2.7.1"}),
        json!({"pre_releases": true, "semver_constraint": "< 5.0.0-0"}),
        json!({"pre_releases": true, "semver_constraint": ">= 2.5.0-0, < 2.6"}),
        json!({"pre_releases": true, "pre_release_prefixes": ["dev"], "semver_constraint": "< 4.2.0-rc"}),
        json!({"variant": "alpine", "semver_constraint": "< 4.1"}),
        json!({"variant": "alpine", "pre_releases": true, "semver_constraint": "*-0"}),
        // Anchored already, so both read them alike.
        json!({"tag_regex": "^v4\\.[0-9]+\\.[0-9]+$"}),
        json!({"tag_regex": "^1\\.1[0-4]\\.[0-9]$"}),
        json!({"tag": "latest"}),
        json!({"tag": "3.14"}),
    ];
    for keys in cases {
        let source = repo.source(keys.clone());
        let all = oracle(&theirs, &json!({"source": source}));
        assert!(
            !all.is_empty(),
            "{keys}: registry-image-resource found nothing"
        );
        let by_regex = keys.get("tag_regex").is_some();
        let newest = |versions: &[Value]| -> Value {
            if by_regex {
                let name = |v: &&Value| v["tag"].as_str().unwrap().to_string();
                let highest = versions
                    .iter()
                    .max_by(|a, b| natural(&name(a), &name(b)))
                    .unwrap();
                highest.clone()
            } else {
                versions[versions.len() - 1].clone()
            }
        };
        // A first check: we report its newest only.
        let ours = reported(&check(&source, None));
        assert_eq!(ours, [newest(&all)], "{keys}: theirs {all:?}");
        // From versions it reported (its oldest, one in the middle, the one before its newest,
        // its newest): that version, then the newest (not those between).
        let mut picks = vec![0, all.len() / 2, all.len().saturating_sub(2), all.len() - 1];
        picks.sort();
        picks.dedup();
        for cursor in picks.into_iter().map(|i| &all[i]) {
            let request = json!({"source": source, "version": cursor});
            let theirs_now = oracle(&theirs, &request);
            let ours_now = reported(&check(&source, Some(cursor)));
            let mut expected = vec![cursor.clone()];
            let top = newest(&theirs_now);
            if top != *cursor {
                expected.push(top);
            }
            if !by_regex {
                // Its own first is the cursor too: it reports from there on.
                assert_eq!(theirs_now[0], *cursor, "{keys}: theirs {theirs_now:?}");
            }
            assert_eq!(
                ours_now, expected,
                "{keys} from {cursor}: theirs {theirs_now:?}"
            );
        }
    }
}
