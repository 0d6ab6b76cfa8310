//! The judge of src/policy/semver.rs, our port of Masterminds/semver: the Go library itself
//! (`semver-oracle`, built by `scripts/tools.sh test` from the version registry-image-resource
//! v1.18.0 pins) answers for generated constraints and versions, and ours must answer the same:
//! which versions parse, which constraints parse, which versions meet them, and their order.

use std::io::Write as _;
use std::process::{Command, Stdio};

use image_rollout_resource::policy::semver::{Constraint, Version};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Asks the Go library about every line at once (one process per case, not per line).
fn masterminds(lines: &[String]) -> Vec<String> {
    let oracle = testbed::tools_bin().join("semver-oracle");
    let mut child = Command::new(&oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build it with scripts/tools.sh test",
                oracle.display()
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "semver-oracle failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..4).prop_map(|n| n.to_string()),
        1 => Just("10".to_string()),
        1 => Just("01".to_string()),
        1 => Just("18446744073709551616".to_string()),
    ]
}

/// Pre-release and metadata parts: words, numbers, leading zeros, dashes.
fn identifiers() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("rc"),
        Just("alpha"),
        Just("beta"),
        Just("dev"),
        Just("0"),
        Just("1"),
        Just("2"),
        Just("10"),
        Just("01"),
        Just("x-y"),
        Just("1a"),
    ];
    prop::collection::vec(word, 1..4).prop_map(|w| w.join("."))
}

/// Versions as tags spell them, and some that are not versions.
fn version() -> impl Strategy<Value = String> {
    let shaped = (
        prop::option::of(Just("v")),
        number(),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::weighted(0.4, identifiers()),
        prop::option::weighted(0.1, identifiers()),
    )
        .prop_map(|(v, major, minor, patch, pre, meta)| {
            let mut s = format!("{}{major}", v.unwrap_or_default());
            for part in [minor, patch].into_iter().flatten() {
                s += &format!(".{part}");
            }
            if let Some(pre) = pre {
                s += &format!("-{pre}");
            }
            if let Some(meta) = meta {
                s += &format!("+{meta}");
            }
            s
        });
    prop_oneof![
        9 => shaped,
        1 => prop_oneof![Just("latest"), Just("1.2.3.4"), Just("1..2"), Just("V1"), Just(""), Just("1.2-")]
            .prop_map(str::to_string),
    ]
}

/// A version inside a constraint: wildcards and partial versions as well.
fn constraint_version() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => number(),
        1 => Just("x".to_string()),
        1 => Just("*".to_string()),
        1 => Just("X".to_string()),
    ]
    .boxed();
    (
        prop::option::of(Just("v")),
        part.clone(),
        prop::option::of(part.clone()),
        prop::option::of(part),
        prop::option::weighted(0.25, identifiers()),
    )
        .prop_map(|(v, major, minor, patch, pre)| {
            let mut s = format!("{}{major}", v.unwrap_or_default());
            for part in [minor, patch].into_iter().flatten() {
                s += &format!(".{part}");
            }
            if let Some(pre) = pre {
                s += &format!("-{pre}");
            }
            s
        })
}

fn comparison() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        Just(""),
        Just("="),
        Just("!="),
        Just(">"),
        Just("<"),
        Just(">="),
        Just("=>"),
        Just("<="),
        Just("=<"),
        Just("~"),
        Just("~>"),
        Just("^"),
    ];
    prop_oneof![
        6 => (op, prop::option::of(Just(" ")), constraint_version())
            .prop_map(|(op, space, v)| format!("{op}{}{v}", space.unwrap_or_default())),
        1 => (constraint_version(), constraint_version()).prop_map(|(a, b)| format!("{a} - {b}")),
    ]
}

/// Constraints: `||` of groups of comparisons joined by `,` or spaces, and some garbage.
fn constraint() -> impl Strategy<Value = String> {
    let and = prop_oneof![Just(", "), Just(","), Just(" ")];
    let group = (
        comparison(),
        prop::collection::vec((and, comparison()), 0..3),
    )
        .prop_map(|(first, rest)| {
            rest.into_iter()
                .fold(first, |s, (and, next)| format!("{s}{and}{next}"))
        })
        .boxed();
    let or = prop_oneof![Just(" || "), Just("||")];
    prop_oneof![
        12 => (group.clone(), prop::option::weighted(0.3, (or, group)))
            .prop_map(|(a, b)| match b {
                Some((or, b)) => format!("{a}{or}{b}"),
                None => a,
            }),
        1 => prop_oneof![Just("banana"), Just(">= 1.2 <"), Just("|| 1"), Just(">=1.2,"), Just("1 -- 2")]
            .prop_map(str::to_string),
    ]
}

fn ours(constraint: &str, version: &str) -> String {
    let c = match Constraint::parse(constraint) {
        Ok(c) => c,
        Err(_) => return "badconstraint".into(),
    };
    match Version::parse(version) {
        Some(v) => c.matches(&v).to_string(),
        None => "badversion".into(),
    }
}

fn order(a: &str, b: &str) -> String {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => (a.cmp(&b) as i8).to_string(),
        _ => "badversion".into(),
    }
}

/// `IRR_FUZZ_SCALE=N` runs N times the cases, as tests/fuzz.rs does.
fn config() -> Config {
    let scale: u32 = std::env::var("IRR_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Config {
        cases: 100 * scale,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn constraints_judge_versions_as_masterminds_does(
        pairs in prop::collection::vec((constraint(), version()), 100),
        ordered in prop::collection::vec((version(), version()), 40),
    ) {
        let mut lines: Vec<String> = pairs.iter().map(|(c, v)| format!("{c}\t{v}")).collect();
        lines.push("compare".into());
        lines.extend(ordered.iter().map(|(a, b)| format!("{a}\t{b}")));
        let theirs = masterminds(&lines);
        prop_assert_eq!(theirs.len(), pairs.len() + ordered.len());
        for ((c, v), expected) in pairs.iter().zip(&theirs) {
            prop_assert_eq!(&ours(c, v), expected, "constraint {:?}, version {:?}", c, v);
        }
        for ((a, b), expected) in ordered.iter().zip(&theirs[pairs.len()..]) {
            prop_assert_eq!(&order(a, b), expected, "{:?} vs {:?}", a, b);
        }
    }
}
