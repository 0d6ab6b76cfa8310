//! The module graph of `src/` reads top-down: no module names one that (directly or through
//! others) names it back. A circle is where a newcomer stops being able to read one module
//! without the other, and where a move starts dragging code it does not need along.
//!
//! The graph is read from the source text, the way a reader follows it: every path a file names
//! (`crate::a::b`, `super::c`, or a child's `c::…` from a `mod.rs`) is an arrow to the deepest
//! module of `src/` that the path names. `mod c;` declarations and comments are not arrows; an
//! `impl Registry` in a child file is not either (the child names its parent, the parent only
//! calls a method), which is how one type's methods are split by job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`registry::auth`) → its file's text without comments and tests.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let mut name = prefix.to_vec();
            if path.is_dir() {
                name.push(stem);
                walk(&path, &name, out);
                continue;
            }
            if stem != "mod" && stem != "lib" {
                name.push(stem);
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .filter(|l| !l.trim_start().starts_with("mod ") && !l.contains(" mod "))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name.join("::"), code);
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The deepest known module that `segments` (a path, from the crate root) names.
fn resolve(known: &BTreeMap<String, String>, segments: &[&str]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| known.contains_key(m))
}

/// Every arrow `from → to` between two different modules.
fn arrows(known: &BTreeMap<String, String>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (module, code) in known {
        let own: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let parent = &own[..own.len().saturating_sub(1)];
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // A path starts at an identifier not preceded by another path segment.
            let starts = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
                && (i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[i - 1])));
            if !starts {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || b"_:".contains(&bytes[end]))
            {
                end += 1;
            }
            let path = &code[i..end];
            i = end;
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if segments.len() < 2 && !path.ends_with("::") {
                // `use select::{…}` ends at `::`; a bare identifier is no path.
                if !code[end..].starts_with("::{") {
                    continue;
                }
            }
            let absolute: Vec<&str> = match segments.first() {
                Some(&"crate") => segments[1..].to_vec(),
                Some(&"super") => parent
                    .iter()
                    .copied()
                    .chain(segments[1..].iter().copied())
                    .collect(),
                Some(&"self") => own
                    .iter()
                    .copied()
                    .chain(segments[1..].iter().copied())
                    .collect(),
                // A child named from its own module file (`wait::selector` in cluster/mod.rs).
                Some(first)
                    if known.contains_key(
                        &own.iter()
                            .chain([first])
                            .copied()
                            .collect::<Vec<_>>()
                            .join("::"),
                    ) =>
                {
                    own.iter()
                        .copied()
                        .chain(segments.iter().copied())
                        .collect()
                }
                _ => continue,
            };
            if let Some(to) = resolve(known, &absolute)
                && &to != module
                && !to.is_empty()
            {
                out.insert((module.clone(), to));
            }
        }
    }
    out
}

#[test]
fn no_module_names_one_that_names_it_back() {
    let known = modules();
    assert!(
        known.contains_key("registry::auth"),
        "read src/: {:?}",
        known.keys()
    );
    let arrows = arrows(&known);
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in &arrows {
        next.entry(from).or_default().push(to);
    }
    // Depth-first search; a node met again while still on the path closes a circle.
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            circles.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for to in next.get(node).into_iter().flatten() {
            visit(to, next, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for module in known.keys() {
        visit(module, &next, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "module circles in src/:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_put_modes_share_what_lies_below_them_and_git_knows_no_put_or_action() {
    let arrows = arrows(&modules());
    let names = |from: &str, to: &str| {
        arrows
            .iter()
            .any(|(f, t)| f.split("::").next() == Some(from) && t.split("::").next() == Some(to))
    };
    for mode in ["rollout", "gitops"] {
        assert!(!names(mode, "put"), "{mode} imports the dispatcher");
        assert!(names(mode, "deploy"), "{mode} should share crate::deploy");
    }
    assert!(!names("rollout", "gitops") && !names("gitops", "rollout"));
    // The GitHub Action is another front end of the GitOps mode, as `put` is.
    assert!(names("action", "gitops") && !names("gitops", "action"));
    for below in ["git", "deploy", "cluster", "registry", "http", "verify"] {
        for above in [
            "put", "rollout", "gitops", "check", "get", "steps", "action",
        ] {
            assert!(
                !names(below, above),
                "{below} names {above}, which lies above it"
            );
        }
    }
}
