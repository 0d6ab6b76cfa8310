//! Versions and constraints exactly as `github.com/Masterminds/semver/v3` v3.5.0 reads them,
//! because that is what registry-image-resource's `semver_constraint` means, and a pipeline that
//! switches to us must not find a tag it followed silently dropped (or one it excluded deployed).
//!
//! Masterminds is not Cargo's semver: `1.2` is a version (1.2.0), `v1.2.3` is one too, leading
//! zeros are tolerated, `1.2` as a constraint means `~1.2` (any 1.2.x), a comparison excludes
//! pre-releases unless its own version has one, `,` and spaces both mean "and". So this is a
//! port of its grammar (the same regular expressions; Go's RE2 and the `regex` crate agree on
//! them once `\s` and `\d` are spelt in ASCII) and of its operators, held against the Go library
//! itself by `tests/tags.rs` (every version × constraint of a generated table through a small Go
//! program built from the same module version).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

/// Go's `\s` (RE2's ASCII class); the `regex` crate's is Unicode and also takes `\v`.
const S: &str = r"[\t\n\x0C\r ]";
/// `looseSemVerRegex`: how `NewVersion` reads a tag.
const LOOSE: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// `cvRegex`: a version inside a constraint, with `x`, `X` and `*` wildcards. (The `|` in the
/// classes is Masterminds' own: a literal bar, kept so that what it accepts we accept.)
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// The operators, in Masterminds' order: the order decides which alternative a match takes.
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

/// Versions and constraints longer than Masterminds' limits are refused as it refuses them.
const MAX_VERSION: usize = 256;
const MAX_CONSTRAINT: usize = 512;
const MAX_GROUPS: usize = 32;

fn regex(pattern: String) -> Regex {
    Regex::new(&pattern).expect("the patterns are constants")
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| regex(format!("^{LOOSE}$")));
static SINGLE: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"^{S}*({OPS}){S}*({CV}){S}*$")));
static RANGE: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"{S}*({CV}){S}+-{S}+({CV}){S}*")));
static FIND: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"({OPS}){S}*({CV})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    regex(format!(
        r"^({S}*({OPS}){S}*({CV}){S}*)((?:{S}+|,{S}*)({OPS}){S}*({CV}){S}*)*$"
    ))
});

/// A version a tag names: `1.2.3`, `v1.2`, `1.2.3-rc.1+build.5`. Equality is the order's:
/// `1.2` equals `v1.2.0`.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    original: String,
}

impl Version {
    /// The version `text` names, or `None` when it names none (Masterminds' `NewVersion`).
    pub fn parse(text: &str) -> Option<Version> {
        if text.len() > MAX_VERSION {
            return None;
        }
        let m = VERSION.captures(text)?;
        let number = |i: usize| -> Option<u64> {
            match m.get(i) {
                Some(g) => g.as_str().trim_start_matches('.').parse().ok(),
                None => Some(0),
            }
        };
        let pre = m.get(5).map_or("", |g| g.as_str());
        // The grammar already limits the characters; a numeric identifier with a leading zero
        // is the one thing left that Masterminds refuses.
        if pre
            .split('.')
            .any(|p| p.len() > 1 && p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        Some(Version {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            pre: pre.to_string(),
            original: text.to_string(),
        })
    }

    /// The pre-release part, without its `-` (`rc.1`), or "".
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The text it was read from.
    pub fn original(&self) -> &str {
        &self.original
    }
}

impl Ord for Version {
    /// Major, minor, patch, then pre-release (a release above its pre-releases); build metadata
    /// and the text do not count, so `1.2.0`, `v1.2` and `1.2.0+b1` are equal.
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Dot-separated identifiers in turn: numbers numerically and below words, words by bytes, a
/// missing identifier below any present one (`rc` < `rc.1`).
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        let ordering = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if x == y => Ordering::Equal,
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            },
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
}

/// A `semver_constraint`: groups joined by `||`, each a list of comparisons that must all hold.
#[derive(Debug, Clone)]
pub struct Constraint {
    groups: Vec<Group>,
}

#[derive(Debug, Clone)]
struct Group {
    comparisons: Vec<Comparison>,
    /// A group that names a pre-release admits pre-releases; others admit none.
    admits_prereleases: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparison; a version written with fewer than three numbers (or a wildcard) is "dirty"
/// and compares as a range (`>1.2` means from 1.3.0, `<=1.2` up to any 1.2.x).
#[derive(Debug, Clone)]
struct Comparison {
    op: Op,
    version: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

impl Constraint {
    /// Reads a constraint; the error says where it stops making sense (1-based column).
    pub fn parse(text: &str) -> Result<Constraint, String> {
        if text.len() > MAX_CONSTRAINT {
            return Err(format!("longer than {MAX_CONSTRAINT} characters"));
        }
        let rewritten = rewrite_ranges(text);
        let ors: Vec<&str> = rewritten.split("||").collect();
        if ors.len() > MAX_GROUPS {
            return Err(format!("more than {MAX_GROUPS} alternatives joined by ||"));
        }
        let mut groups = Vec::with_capacity(ors.len());
        for or in ors {
            let improper = || {
                // Ranges are rewritten before this; a part that is no range is still itself.
                let column = text.find(or.trim()).map_or(1, |i| i + 1);
                format!(
                    "at column {column}: {:?} is not a comparison (an operator = != > < >= <= ~ ^ and a version such as 1.2.3, 1.2, 1.x or 1.2.3-rc.1; `A - B` for a range, `,` for and, `||` for or)",
                    or.trim()
                )
            };
            if !VALID.is_match(or) {
                return Err(improper());
            }
            let found: Vec<&str> = FIND.find_iter(or).map(|m| m.as_str()).collect();
            let parts = if found.is_empty() { vec![or] } else { found };
            let comparisons = parts
                .into_iter()
                .map(|part| Comparison::parse(part).ok_or_else(improper))
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(Group {
                admits_prereleases: comparisons.iter().any(|c| !c.version.pre.is_empty()),
                comparisons,
            });
        }
        Ok(Constraint { groups })
    }

    /// Whether `version` meets the constraint (Masterminds' `Check`).
    pub fn matches(&self, version: &Version) -> bool {
        self.groups.iter().any(|group| {
            group
                .comparisons
                .iter()
                .all(|c| c.holds(version, group.admits_prereleases))
        })
    }
}

/// `A - B` → `>= A, <= B ` (Masterminds' `rewriteRange`, text for text).
fn rewrite_ranges(text: &str) -> String {
    let mut out = text.to_string();
    for m in RANGE.captures_iter(text) {
        // The second version's group: the whole match, the first version and its 9 groups.
        let rewritten = format!(">= {}, <= {} ", &m[1], &m[11]);
        out = out.replacen(&m[0], &rewritten, 1);
    }
    out
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

impl Comparison {
    fn parse(text: &str) -> Option<Comparison> {
        let m = SINGLE.captures(text)?;
        let op = match &m[1] {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return None,
        };
        let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
        let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let text = if is_wildcard(major) || major.is_empty() {
            dirty = true;
            format!("0.0.0{pre}")
        } else if is_wildcard(minor.trim_start_matches('.')) || minor.is_empty() {
            (dirty, minor_dirty) = (true, true);
            format!("{major}.0.0{pre}")
        } else if is_wildcard(patch.trim_start_matches('.')) || patch.is_empty() {
            (dirty, patch_dirty) = (true, true);
            format!("{major}{minor}.0{pre}")
        } else {
            group(2).to_string()
        };
        Some(Comparison {
            op,
            version: Version::parse(&text)?,
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    /// Masterminds' `constraint*` functions, branch for branch.
    fn holds(&self, v: &Version, admits_prereleases: bool) -> bool {
        if !v.pre.is_empty() && !admits_prereleases {
            return false;
        }
        let c = &self.version;
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v == c,
            Op::Tilde => self.tilde(v),
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty())
                            && compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                    }
                }
                v != c
            }
            Op::Greater => {
                if !self.dirty {
                    return v > c;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v > c
            }
            Op::Less => v < c,
            Op::GreaterEqual => v >= c,
            Op::LessEqual => {
                if !self.dirty {
                    return v <= c;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Caret => {
                if v < c {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        if (c.major, c.minor, c.patch) == (0, 0, 0) && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(constraint: &str, version: &str) -> bool {
        Constraint::parse(constraint)
            .unwrap()
            .matches(&Version::parse(version).unwrap())
    }

    #[test]
    fn versions_read_as_masterminds_reads_them() {
        for (text, (major, minor, patch, pre)) in [
            ("1.2.3", (1, 2, 3, "")),
            ("v1.2", (1, 2, 0, "")),
            ("1", (1, 0, 0, "")),
            ("01.02.03", (1, 2, 3, "")),
            ("1.2.3-rc.1+build.5", (1, 2, 3, "rc.1")),
            ("1.2-alpine", (1, 2, 0, "alpine")),
        ] {
            let v = Version::parse(text).unwrap();
            assert_eq!(
                (v.major, v.minor, v.patch, v.prerelease()),
                (major, minor, patch, pre)
            );
        }
        for text in [
            "latest",
            "1.2.3.4",
            "V1.2",
            "1.2.3-rc.01",
            "",
            "1.2.3+",
            "v",
            "1..2",
        ] {
            assert!(Version::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn order_puts_releases_above_their_prereleases() {
        let mut versions: Vec<Version> = [
            "1.0.0",
            "1.0.0-rc.10",
            "1.0.0-rc.2",
            "1.0.0-alpha",
            "1.0.0-rc",
            "0.9",
        ]
        .into_iter()
        .map(|t| Version::parse(t).unwrap())
        .collect();
        versions.sort();
        let order: Vec<&str> = versions.iter().map(Version::original).collect();
        assert_eq!(
            order,
            [
                "0.9",
                "1.0.0-alpha",
                "1.0.0-rc",
                "1.0.0-rc.2",
                "1.0.0-rc.10",
                "1.0.0"
            ]
        );
    }

    #[test]
    fn constraints_mean_what_masterminds_documents() {
        assert!(holds(">= 1.2, < 2", "1.9.9"));
        assert!(!holds(">= 1.2, < 2", "2.0.0"));
        assert!(holds("~1.2", "1.2.9") && !holds("~1.2", "1.3.0"));
        assert!(holds("^1.2", "1.9.0") && !holds("^1.2", "2.0.0"));
        assert!(holds("1.2.x", "1.2.7") && !holds("1.2.x", "1.3.0"));
        assert!(holds("1.2 - 1.4.5", "1.4.5") && !holds("1.2 - 1.4.5", "1.4.6"));
        assert!(holds("<1.2 || >=3", "3.1.0") && !holds("<1.2 || >=3", "2.0.0"));
        assert!(
            !holds(">= 1.0", "1.5.0-rc.1"),
            "pre-releases need a pre-release in the constraint"
        );
        assert!(holds(">= 1.0-0", "1.5.0-rc.1"));
        assert!(holds("*", "7.0.0") && !holds("*", "7.0.0-beta"));
    }

    #[test]
    fn a_bad_constraint_names_its_column() {
        let e = Constraint::parse(">= 1.2, < 2 || banana").unwrap_err();
        assert!(e.starts_with("at column 16: \"banana\""), "{e}");
    }
}
