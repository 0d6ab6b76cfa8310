//! Which tags `check` follows: one tag (`tag`, the default), the highest semver tag
//! (`semver_constraint`, `variant`, `pre_releases`, `pre_release_prefixes`), or the tags a
//! regular expression matches (`tag_regex`), with registry-image-resource's keys and meanings.
//!
//! Where we differ from it, on purpose (README, "Tag policies", lists them for users):
//! - keys that contradict each other are refused, naming both; it lets one silently win;
//! - `tag_regex` must match the whole tag; it accepts a match anywhere (`1\.2` matched `11.2.0-debug`);
//! - of the tags `tag_regex` matches, the newest is the highest in [`natural`] order
//!   (`build-10` above `build-9`); it takes the registry's listing order, which is no order at
//!   all on some (Distribution 2.8 lists tags as its storage happens to hold them);
//! - only the newest tag and the version Concourse already has are reported, never every older
//!   release on a first check (Concourse deploys the newest; the rest cost one request each);
//! - with semver keys, the bare `latest` (or `variant`) tag is never reported as newer than the
//!   releases: a deploy that follows releases must not roll to whatever `latest` is;
//! - `created_at_sort` is refused: it costs three requests per matching tag, every check.

use std::cmp::Ordering;

use regex::bytes::Regex;

use super::semver::{Constraint, Version};
use crate::config::Source;
use crate::error::{Error, Result};
use crate::registry::tag::is_tag;

/// How a source picks its tags.
#[derive(Debug)]
pub enum Policy {
    /// Exactly one tag.
    Tag(String),
    Semver(Semver),
    /// Tags the expression matches, whole, ranked by [`natural`] order; `pattern` as given.
    Regex {
        regex: Regex,
        pattern: String,
    },
}

/// The semver keys, read.
#[derive(Debug)]
pub struct Semver {
    /// The first semver key set: the one an error about the policy names.
    key: &'static str,
    constraint: Option<Constraint>,
    variant: Option<String>,
    pre_releases: bool,
    prefixes: Vec<String>,
}

/// A tag the policy accepts, with what ranks it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub tag: String,
    rank: Rank,
}

#[derive(Debug, Clone)]
enum Rank {
    /// The version, then the number of dots (`1.2.0` over `1.2`, as registry-image-resource
    /// prefers the more specific tag), then listed earlier (`1.2.0` over `v1.2.0`).
    Version(Version, usize, std::cmp::Reverse<usize>),
    /// The tag itself, in [`natural`] order.
    Named,
}

impl Candidate {
    /// Whether `self` is a newer version than `other`: a higher semver (ignoring which of two
    /// spellings of one version), or listed later.
    pub fn newer_than(&self, other: &Candidate) -> bool {
        match (&self.rank, &other.rank) {
            (Rank::Version(a, ..), Rank::Version(b, ..)) => a > b,
            (Rank::Named, Rank::Named) => natural(&self.tag, &other.tag).is_gt(),
            _ => false,
        }
    }

    /// Of two tags with one digest, the one registry-image-resource reports: a release over a
    /// pre-release, else the more specific tag, else `self` (the one Concourse already has).
    pub fn preferred_over(&self, other: &Candidate) -> bool {
        match (&self.rank, &other.rank) {
            (Rank::Version(a, a_dots, _), Rank::Version(b, b_dots, _)) => {
                match (a.prerelease().is_empty(), b.prerelease().is_empty()) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => a_dots >= b_dots,
                }
            }
            _ => true,
        }
    }

    fn cmp(&self, other: &Candidate) -> Ordering {
        match (&self.rank, &other.rank) {
            (Rank::Version(a, a_dots, a_at), Rank::Version(b, b_dots, b_at)) => {
                (a, a_dots, a_at).cmp(&(b, b_dots, b_at))
            }
            (Rank::Named, Rank::Named) => natural(&self.tag, &other.tag),
            _ => Ordering::Equal,
        }
    }
}

impl Policy {
    /// Reads the policy keys of `source`, refusing combinations that contradict each other.
    pub fn of(source: &Source) -> Result<Policy> {
        let conflict = |key: &'static str, other: &str, why: &str| Error::Config {
            key,
            message: format!("cannot be combined with {other}: {why}; remove one"),
        };
        if source.created_at_sort {
            return Err(Error::Config {
                key: "source.created_at_sort",
                message: "is not supported: ordering by creation time reads every matching tag's \
                          image config (three requests per tag, every check); use \
                          semver_constraint, or a tag_regex (whose newest is the highest by name)"
                    .into(),
            });
        }
        let semver_keys = [
            (
                "source.semver_constraint",
                source.semver_constraint.is_some(),
            ),
            ("source.variant", source.variant.is_some()),
            ("source.pre_releases", source.pre_releases),
            (
                "source.pre_release_prefixes",
                !source.pre_release_prefixes.is_empty(),
            ),
        ];
        let semver = semver_keys
            .iter()
            .find(|(_, set)| *set)
            .map(|(key, _)| *key);
        if let (Some(_), Some(other)) = (
            &source.tag,
            semver.or(source.tag_regex.as_ref().map(|_| "source.tag_regex")),
        ) {
            return Err(conflict(
                "source.tag",
                other,
                "tag follows exactly one tag, the other follows releases",
            ));
        }
        if let (Some(_), Some(other)) = (&source.tag_regex, semver) {
            return Err(conflict(
                "source.tag_regex",
                other,
                "tag_regex ranks tags by name, the other by semver",
            ));
        }
        if !source.pre_release_prefixes.is_empty() && !source.pre_releases {
            return Err(Error::Config {
                key: "source.pre_release_prefixes",
                message: "has no effect without source.pre_releases: true".into(),
            });
        }
        if let Some(pattern) = &source.tag_regex {
            return Ok(Policy::Regex {
                regex: compile(pattern)?,
                pattern: pattern.clone(),
            });
        }
        if semver.is_none() {
            return Ok(Policy::Tag(source.tag().to_string()));
        }
        if source.variant.as_deref() == Some("") {
            return Err(Error::Config {
                key: "source.variant",
                message:
                    "is empty; give the suffix of the tags to follow (alpine for 1.2.3-alpine)"
                        .into(),
            });
        }
        let constraint = source
            .semver_constraint
            .as_deref()
            .map(|text| {
                Constraint::parse(text).map_err(|message| Error::Config {
                    key: "source.semver_constraint",
                    message,
                })
            })
            .transpose()?;
        Ok(Policy::Semver(Semver {
            key: semver.unwrap_or("source.semver_constraint"),
            constraint,
            variant: source.variant.clone(),
            pre_releases: source.pre_releases,
            prefixes: source.pre_release_prefixes.clone(),
        }))
    }

    /// The tags of `listed` this policy accepts, oldest first (for [`Policy::Tag`], none: one
    /// tag needs no listing).
    pub fn candidates(&self, listed: &[String]) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = listed
            .iter()
            .enumerate()
            .filter(|(_, tag)| is_tag(tag))
            .filter_map(|(at, tag)| {
                let rank = match self {
                    Policy::Tag(_) => return None,
                    Policy::Regex { regex, .. } => {
                        regex.is_match(tag.as_bytes()).then_some(Rank::Named)?
                    }
                    Policy::Semver(semver) => Rank::Version(
                        semver.version(tag)?,
                        tag.matches('.').count(),
                        std::cmp::Reverse(at),
                    ),
                };
                Some(Candidate {
                    tag: tag.clone(),
                    rank,
                })
            })
            .collect();
        candidates.sort_by(Candidate::cmp);
        candidates
    }

    /// The key that chose this policy, for errors about it.
    pub fn key(&self) -> &'static str {
        match self {
            Policy::Tag(_) => "source.tag",
            Policy::Regex { .. } => "source.tag_regex",
            Policy::Semver(semver) => semver.key,
        }
    }

    /// What the policy follows, for log lines: `tags matching tag_regex main-[0-9]+`.
    pub fn describe(&self) -> String {
        match self {
            Policy::Tag(tag) => format!("tag {tag}"),
            Policy::Regex { pattern, .. } => {
                format!(
                    "tags matching tag_regex {}",
                    crate::error::one_line(pattern)
                )
            }
            Policy::Semver(semver) => {
                let mut what = vec!["semver tags".to_string()];
                if let Some(variant) = &semver.variant {
                    what.push(format!("with variant {variant}"));
                }
                if semver.constraint.is_some() {
                    what.push("meeting semver_constraint".into());
                }
                if semver.pre_releases {
                    what.push("pre-releases included".into());
                }
                what.join(", ")
            }
        }
    }
}

impl Semver {
    /// The version `tag` stands for, if the policy accepts it: registry-image-resource's filter,
    /// step for step (the variant suffix, semver, the constraint, then the pre-release rules).
    fn version(&self, tag: &str) -> Option<Version> {
        let text = match &self.variant {
            Some(variant) => tag.strip_suffix(variant.as_str())?.strip_suffix('-')?,
            None => tag,
        };
        let version = Version::parse(text)?;
        if self
            .constraint
            .as_ref()
            .is_some_and(|c| !c.matches(&version))
        {
            return None;
        }
        let pre = version.prerelease();
        if !pre.is_empty() {
            if !self.pre_releases {
                return None;
            }
            // Without extra prefixes, a dash in the pre-release is another variant's suffix
            // (`1.2.3-rc.1-alpine`), not part of the pre-release.
            if self.prefixes.is_empty() && pre.contains('-') {
                return None;
            }
            let known = ["alpha", "beta", "rc"].into_iter();
            let mut prefixes = known.chain(self.prefixes.iter().map(String::as_str));
            if !prefixes.any(|p| pre.starts_with(p)) {
                return None;
            }
        }
        Some(version)
    }
}

/// Tags compared as people read them: runs of digits as numbers (`build-9` < `build-10`,
/// `2024.1.5` < `2024.1.12`), the rest byte by byte; equal numbers with more leading zeros first,
/// so that no two different tags compare equal.
pub fn natural(a: &str, b: &str) -> Ordering {
    fn runs(tag: &str) -> impl Iterator<Item = &str> {
        let mut rest = tag;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some(run)
        })
    }
    let number = |run: &str| run.trim_start_matches('0').to_string();
    let mut zeros = Ordering::Equal;
    let (mut a_runs, mut b_runs) = (runs(a), runs(b));
    loop {
        let ordering = match (a_runs.next(), b_runs.next()) {
            (None, None) => return zeros,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y))
                if x.starts_with(|c: char| c.is_ascii_digit())
                    && y.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                let (x_n, y_n) = (number(x), number(y));
                if zeros.is_eq() {
                    zeros = y.len().cmp(&x.len());
                }
                x_n.len().cmp(&y_n.len()).then_with(|| x_n.cmp(&y_n))
            }
            (Some(x), Some(y)) => x.cmp(y),
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
}

/// `^(?:PATTERN)$`, with a syntax error's column and reason in one line. `\d`, `\w`, `\s` and
/// `.` mean what they mean in Go's RE2 (registry-image-resource's): ASCII, which is all a tag can
/// hold; and ASCII classes compile in microseconds where Unicode ones take tens of milliseconds
/// and megabytes (docs/design.md, the `oci-spec` regex cut).
fn compile(pattern: &str) -> Result<Regex> {
    let invalid = |message: String| Error::Config {
        key: "source.tag_regex",
        message,
    };
    let parsed = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern);
    if let Err(e) = parsed {
        let (column, kind) = match &e {
            regex_syntax::Error::Parse(e) => (e.span().start.column, e.kind().to_string()),
            regex_syntax::Error::Translate(e) => (e.span().start.column, e.kind().to_string()),
            _ => (1, e.to_string()),
        };
        return Err(invalid(format!("at column {column}: {kind}")));
    }
    regex::bytes::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| invalid(crate::error::one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(json: &str) -> Source {
        serde_json::from_str(json).unwrap()
    }

    fn newest(policy: &str, tags: &[&str]) -> Option<String> {
        let policy = Policy::of(&source(policy)).unwrap();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        policy.candidates(&tags).pop().map(|c| c.tag)
    }

    #[test]
    fn semver_follows_the_highest_release_and_its_most_specific_tag() {
        let tags = [
            "1",
            "1.2",
            "1.2.3",
            "1.3.0-rc.1",
            "latest",
            "v1.2.4",
            "2.0.0",
            "main",
        ];
        let p = r#"{"repository": "r", "semver_constraint": "< 2"}"#;
        assert_eq!(newest(p, &tags).as_deref(), Some("v1.2.4"));
        let p = r#"{"repository": "r", "semver_constraint": "~1.2.3"}"#;
        assert_eq!(
            newest(p, &["1.2", "1.2.3", "1.2.0"]).as_deref(),
            Some("1.2.3")
        );
        let p = r#"{"repository": "r", "pre_releases": true}"#;
        assert_eq!(
            newest(p, &["1.2.3", "1.3.0-rc.1"]).as_deref(),
            Some("1.3.0-rc.1")
        );
        let p = r#"{"repository": "r", "variant": "alpine"}"#;
        assert_eq!(
            newest(p, &["1.2.3-alpine", "1.3.0", "1.2.4-alpine3"]).as_deref(),
            Some("1.2.3-alpine")
        );
    }

    #[test]
    fn pre_releases_follow_registry_image_resources_words() {
        let p = r#"{"repository": "r", "pre_releases": true}"#;
        assert_eq!(
            newest(p, &["1.0.0", "1.1.0-dev.1", "1.1.0-rc.1-alpine"]).as_deref(),
            Some("1.0.0")
        );
        let p = r#"{"repository": "r", "pre_releases": true, "pre_release_prefixes": ["dev"]}"#;
        assert_eq!(
            newest(p, &["1.0.0", "1.1.0-dev.1"]).as_deref(),
            Some("1.1.0-dev.1")
        );
    }

    #[test]
    fn tag_regex_matches_whole_tags_and_the_highest_is_newest() {
        let p = r#"{"repository": "r", "tag_regex": "main-[0-9]+"}"#;
        let tags = ["main-10", "main-9", "main-10-debug", "xmain-30", "main-009"];
        assert_eq!(newest(p, &tags).as_deref(), Some("main-10"));
    }

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut tags = [
            "b-10",
            "b-9",
            "a",
            "b-09",
            "2024.1.12",
            "2024.1.5",
            "b-9x",
            "b",
        ];
        tags.sort_by(|a, b| natural(a, b));
        assert_eq!(
            tags,
            [
                "2024.1.5",
                "2024.1.12",
                "a",
                "b",
                "b-09",
                "b-9",
                "b-9x",
                "b-10"
            ]
        );
    }

    #[test]
    fn contradicting_keys_are_refused_naming_both() {
        for (json, key, other) in [
            (
                r#""tag": "main", "semver_constraint": "1""#,
                "source.tag",
                "source.semver_constraint",
            ),
            (
                r#""tag": "main", "tag_regex": "v.*""#,
                "source.tag",
                "source.tag_regex",
            ),
            (
                r#""tag_regex": "v.*", "variant": "alpine""#,
                "source.tag_regex",
                "source.variant",
            ),
            (
                r#""pre_release_prefixes": ["dev"]"#,
                "source.pre_release_prefixes",
                "pre_releases",
            ),
            (
                r#""created_at_sort": true, "tag_regex": "v.*""#,
                "source.created_at_sort",
                "tag_regex",
            ),
        ] {
            let e = Policy::of(&source(&format!(r#"{{"repository": "r", {json}}}"#))).unwrap_err();
            let e = e.to_string();
            assert!(e.starts_with(key) && e.contains(other), "{e}");
        }
    }

    #[test]
    fn a_bad_regex_names_its_column() {
        let e = Policy::of(&source(r#"{"repository": "r", "tag_regex": "v[0-9+"}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "source.tag_regex: at column 2: unclosed character class"
        );
    }
}
