//! Rewriting image references inside YAML text without reformatting it.
//!
//! A YAML library that parses and re-emits a file loses comments, quoting, key order and
//! indentation, and a config repository's reviewers read every byte of the diff. So the file is
//! only *parsed* (events with byte spans), the values to change are located, and exactly those
//! byte ranges are replaced; everything else is copied through untouched.
//!
//! Three shapes are rewritten:
//! - any mapping value under the key `image` that names an image of the repository — containers
//!   and initContainers of every workload kind, Pods, CronJobs, and Helm values written as
//!   `image: repo:tag` — becomes `repository@digest`; one written `repo:tag@sha256:…` keeps a tag
//!   before the new digest (the digest wins; the tag is for the reader);
//! - Helm values with split keys under `image:` (`repository`, `registry` + `repository`, or
//!   ingress-nginx's `registry` + `image`): the digest goes where the chart takes it, `digest:`
//!   when the mapping has that key, else `tag: main@sha256:…` (a tag and a digest: a valid
//!   reference in every chart that renders `repository:tag`);
//! - kustomization `images:` entries whose `name` or `newName` is the repository: `digest` is set
//!   and `newTag` dropped (kustomize would otherwise apply both).
//!
//! A reference held by a YAML anchor or alias is refused: changing the anchor changes every
//! alias of it, and changing one alias is impossible without rewriting the document's structure.
//!
//! ```
//! use image_rollout_resource::gitops::edit::{Target, edit};
//! use image_rollout_resource::registry::ImageName;
//! let repository = ImageName::parse("ghcr.io/o/app").unwrap();
//! let digest = format!("sha256:{}", "1".repeat(64));
//! let image = format!("ghcr.io/o/app@{digest}");
//! let target = Target { repository: &repository, image: &image, digest: &digest, tag: Some("main") };
//! let values = "image:\n  repository: ghcr.io/o/app # the app\n  tag: main\n";
//! let edited = edit(values, &target).unwrap();
//! assert_eq!(edited.text, format!("image:\n  repository: ghcr.io/o/app # the app\n  tag: main@{digest}\n"));
//! assert_eq!(edited.previous, ["ghcr.io/o/app:main"]);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use crate::registry::{ImageName, same_repository};

/// The result of editing one file.
#[derive(Debug, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// How many references to the repository the file has (changed or already at the digest).
    pub matches: usize,
    /// The values that were replaced, as they were written (`repo:v1`, `repo newTag v1`).
    pub previous: Vec<String>,
}

/// What to write: `image` is `repository@digest`.
pub struct Target<'a> {
    pub repository: &'a ImageName,
    pub image: &'a str,
    pub digest: &'a str,
    /// The tag the digest was found under, when known: written before the digest where a file
    /// keeps a tag beside it (`repo:main@sha256:…`, Helm's `tag: main@sha256:…`).
    pub tag: Option<&'a str>,
}

/// Why a file was not edited.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    /// The parser's message, with its position.
    NotYaml(String),
    /// A reference this module will not change, and why.
    Refused { line: usize, message: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotYaml(e) => write!(f, "is not valid YAML ({e})"),
            Problem::Refused { line, message } => write!(f, "line {line}: {message}"),
        }
    }
}

/// Whether `text` may hold a reference to `repository`: only such files are parsed, so a file
/// under `paths` that is not YAML at all (a Helm template) and never names the image is left
/// alone. The repository's path is in every shape above (`registry:` split off or not); Docker
/// Hub's official images may be written without `library/`.
pub fn mentions(text: &str, repository: &ImageName) -> bool {
    let path = repository.path.as_str();
    let path = match repository.host.as_str() {
        "registry-1.docker.io" => path.strip_prefix("library/").unwrap_or(path),
        _ => path,
    };
    text.contains(path)
}

/// Edits `text`.
pub fn edit(text: &str, target: &Target) -> Result<Edited, Problem> {
    let mut walker = Walker {
        text,
        target,
        stack: Vec::new(),
        edits: Vec::new(),
        matches: 0,
        previous: Vec::new(),
        anchors: HashMap::new(),
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Problem::NotYaml(e.to_string()))?;
        walker.event(event, span)?;
    }
    let Walker {
        mut edits,
        matches,
        previous,
        ..
    } = walker;
    edits.sort_by_key(|e| e.range.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for e in edits {
        out.push_str(&text[at..e.range.start]);
        out.push_str(&e.replacement);
        at = e.range.end;
    }
    out.push_str(&text[at..]);
    Ok(Edited {
        text: out,
        matches,
        previous,
    })
}

struct Replace {
    range: Range<usize>,
    replacement: String,
}

/// A scalar as written: its value and where it sits.
#[derive(Clone)]
struct Scalar {
    value: String,
    range: Range<usize>,
    style: ScalarStyle,
    /// Column of its first character (for inserting a sibling key in block style).
    column: usize,
    line: usize,
    /// It has an anchor, sits inside an anchored collection, or is an alias.
    shared: bool,
}

impl Default for Scalar {
    /// A key or value that is not a scalar: a collection, or an alias.
    fn default() -> Scalar {
        Scalar {
            value: String::new(),
            range: 0..0,
            style: ScalarStyle::Plain,
            column: 0,
            line: 0,
            shared: false,
        }
    }
}

/// Whether a collection is a key or a value of the mapping around it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
}

enum Frame {
    Map {
        role: Role,
        style: StructureStyle,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<Scalar>,
        /// The key this mapping is the value of (`image` for Helm's split keys).
        parent_key: Option<String>,
        /// This mapping is an entry of an `images:` sequence (a kustomization image).
        images_entry: bool,
        /// Scalar key → scalar value pairs.
        fields: Vec<(Scalar, Scalar)>,
        shared: bool,
    },
    Seq {
        role: Role,
        /// The mapping key this sequence is the value of.
        key: Option<String>,
        shared: bool,
    },
}

impl Frame {
    fn shared(&self) -> bool {
        match self {
            Frame::Map { shared, .. } | Frame::Seq { shared, .. } => *shared,
        }
    }
}

struct Walker<'a> {
    text: &'a str,
    target: &'a Target<'a>,
    stack: Vec<Frame>,
    edits: Vec<Replace>,
    matches: usize,
    previous: Vec<String>,
    /// Anchored scalars' values, to see what an alias under `image:` stands for.
    anchors: HashMap<usize, String>,
}

impl Walker<'_> {
    fn event(&mut self, event: Event, span: Span) -> Result<(), Problem> {
        let inherited = self.stack.last().is_some_and(Frame::shared);
        match event {
            Event::Scalar(value, style, anchor, _) => {
                let range = span
                    .byte_range()
                    .ok_or_else(|| Problem::NotYaml("the parser gave no byte offsets".into()))?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.to_string());
                }
                let scalar = Scalar {
                    value: value.into_owned(),
                    range,
                    style,
                    column: span.start.col(),
                    line: span.start.line(),
                    shared: inherited || anchor != 0,
                };
                self.scalar(scalar);
            }
            Event::Alias(anchor) => {
                let scalar = Scalar {
                    value: self.anchors.get(&anchor).cloned().unwrap_or_default(),
                    line: span.start.line(),
                    shared: true,
                    ..Scalar::default()
                };
                self.scalar(scalar);
            }
            Event::MappingStart(style, anchor, _) => {
                let (role, images_entry) = self.child_role();
                let parent_key = match self.stack.last() {
                    Some(Frame::Map { key: Some(k), .. }) => Some(k.value.clone()),
                    _ => None,
                };
                self.stack.push(Frame::Map {
                    role,
                    style,
                    key: None,
                    parent_key,
                    images_entry,
                    fields: Vec::new(),
                    shared: inherited || anchor != 0,
                });
            }
            Event::SequenceStart(_, anchor, _) => {
                let key = match self.stack.last() {
                    Some(Frame::Map { key: Some(k), .. }) => Some(k.value.clone()),
                    _ => None,
                };
                let (role, _) = self.child_role();
                self.stack.push(Frame::Seq {
                    role,
                    key,
                    shared: inherited || anchor != 0,
                });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    role,
                    style,
                    parent_key,
                    images_entry,
                    fields,
                    ..
                }) = self.stack.pop()
                {
                    self.mapping(style, parent_key.as_deref(), images_entry, &fields)?;
                    self.child_done(role);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { role, .. }) = self.stack.pop() {
                    self.child_done(role);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The role a new collection plays in its parent, and whether it is a kustomization image.
    fn child_role(&self) -> (Role, bool) {
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => (Role::Key, false),
            Some(Frame::Map { .. }) => (Role::Value, false),
            Some(Frame::Seq { key, .. }) => (Role::Item, key.as_deref() == Some("images")),
            None => (Role::Item, false),
        }
    }

    /// A collection ended: in a mapping, a key is followed by its value, a value by the next key.
    fn child_done(&mut self, role: Role) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = match role {
                Role::Key => Some(Scalar::default()),
                _ => None,
            };
        }
    }

    /// A scalar (or an alias) in a mapping: a key, or the value of the key before it.
    fn scalar(&mut self, scalar: Scalar) {
        let Some(Frame::Map { key, fields, .. }) = self.stack.last_mut() else {
            return;
        };
        match key.take() {
            None => *key = Some(scalar),
            Some(k) => fields.push((k, scalar)),
        }
    }

    /// A mapping ended: its image references, in whichever shape it holds them.
    fn mapping(
        &mut self,
        style: StructureStyle,
        parent_key: Option<&str>,
        images_entry: bool,
        fields: &[(Scalar, Scalar)],
    ) -> Result<(), Problem> {
        let field = |name: &str| fields.iter().find(|(k, _)| k.value == name);
        let registry = field("registry");
        // Under `image:`, `repository` (with or without `registry`) names the image, and so does
        // `image` beside `registry` (ingress-nginx); nowhere else is `repository` an image.
        let name = match (parent_key, field("repository"), registry) {
            (Some("image"), Some(name), _) => Some(name),
            (Some("image"), None, Some(_)) => field("image"),
            _ => None,
        };
        match name {
            Some(name) => self.split(style, registry, name, field("tag"), field("digest"))?,
            None => {
                for (_, value) in fields.iter().filter(|(k, _)| k.value == "image") {
                    self.reference(value)?;
                }
            }
        }
        if images_entry {
            self.kustomize_entry(style, fields)?;
        }
        Ok(())
    }

    /// Refuses to edit `value` when an anchor or alias holds it.
    fn not_shared(&self, value: &Scalar) -> Result<(), Problem> {
        if !value.shared {
            return Ok(());
        }
        Err(Problem::Refused {
            line: value.line,
            message: format!(
                "the image of {} is held by a YAML anchor or alias (&name / *name), so editing it would change every place that shares it, or none; write the image out where it is used",
                self.target.image.split('@').next().unwrap_or_default()
            ),
        })
    }

    /// `image: repo[:tag][@digest]`.
    fn reference(&mut self, value: &Scalar) -> Result<(), Problem> {
        if !same_repository(&value.value, self.target.repository) {
            return Ok(());
        }
        self.matches += 1;
        self.not_shared(value)?;
        let new = match written_tag(&value.value) {
            // `repo:tag@digest`: keep a tag in front, the version's own when it is known.
            Some(theirs) if value.value.contains('@') => {
                let tag = self.target.tag.unwrap_or(theirs);
                let (repository, digest) = self.target.image.split_once('@').unwrap_or_default();
                format!("{repository}:{tag}@{digest}")
            }
            _ => self.target.image.to_string(),
        };
        if value.value != new {
            self.previous.push(value.value.clone());
            self.replace_value(value, &new);
        }
        Ok(())
    }

    /// Helm's split keys: `registry`? + `repository` (or `image`), `tag`?, `digest`?.
    fn split(
        &mut self,
        style: StructureStyle,
        registry: Option<&(Scalar, Scalar)>,
        name: &(Scalar, Scalar),
        tag: Option<&(Scalar, Scalar)>,
        digest: Option<&(Scalar, Scalar)>,
    ) -> Result<(), Problem> {
        let full = match registry {
            Some((_, r)) if !r.value.is_empty() => format!("{}/{}", r.value, name.1.value),
            _ => name.1.value.clone(),
        };
        if !same_repository(&full, self.target.repository) {
            return Ok(());
        }
        self.matches += 1;
        for (_, value) in [registry, Some(name), tag, digest].into_iter().flatten() {
            self.not_shared(value)?;
        }
        let target = self.target.digest;
        if let Some((_, d)) = digest {
            if d.value != target {
                self.previous.push(match tag {
                    _ if !d.value.is_empty() => format!("{full}@{}", d.value),
                    Some((_, t)) => format!("{full}:{}", t.value),
                    None => full.clone(),
                });
                self.replace_value(d, target);
            }
            return Ok(());
        }
        let theirs = tag.map(|(_, t)| t.value.split('@').next().unwrap_or_default());
        let Some(label) = self.target.tag.or(theirs.filter(|t| !t.is_empty())) else {
            return Err(Problem::Refused {
                line: tag.map_or(name.1.line, |(_, t)| t.line),
                message: format!(
                    "image.tag of {full} is {}, and the chart has no image.digest, so the digest has no tag to follow (tag: TAG@sha256:…); set image.tag, or deploy a version whose tag is known",
                    if tag.is_some() { "empty" } else { "missing" }
                ),
            });
        };
        let new = format!("{label}@{target}");
        match tag {
            Some((_, t)) if t.value == new => {}
            Some((_, t)) => {
                self.previous.push(format!("{full}:{}", t.value));
                self.replace_value(t, &new);
            }
            None => {
                self.previous.push(full);
                let (key, value) = name;
                self.insert_after(style, key, value, &format!("tag: {new}"));
            }
        }
        Ok(())
    }

    /// Replaces a scalar's content, keeping its quotes.
    fn replace_value(&mut self, scalar: &Scalar, value: &str) {
        let mut range = scalar.range.clone();
        let written = &self.text[range.clone()];
        let quoted = matches!(
            scalar.style,
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
        );
        if quoted && written.len() >= 2 && written.starts_with(['"', '\'']) {
            range = range.start + 1..range.end - 1;
        }
        // `tag:` with nothing after it: the value needs its space.
        let space = if !quoted && written.is_empty() && self.text[..range.start].ends_with(':') {
            " "
        } else {
            ""
        };
        self.edits.push(Replace {
            range,
            replacement: format!("{space}{value}"),
        });
    }

    /// Inserts `pair` into a mapping right after `key: value`, in the mapping's style.
    fn insert_after(&mut self, style: StructureStyle, key: &Scalar, value: &Scalar, pair: &str) {
        let at = self.value_end(value);
        let replacement = match style {
            StructureStyle::Flow => format!(", {pair}"),
            StructureStyle::Block => format!("\n{}{pair}", " ".repeat(key.column)),
        };
        self.edits.push(Replace {
            range: at..at,
            replacement,
        });
    }

    /// A kustomization `images:` entry of the repository: set `digest`, drop `newTag`.
    fn kustomize_entry(
        &mut self,
        style: StructureStyle,
        fields: &[(Scalar, Scalar)],
    ) -> Result<(), Problem> {
        let field = |name: &str| fields.iter().find(|(k, _)| k.value == name);
        let ours = ["name", "newName"].iter().any(|n| {
            field(n).is_some_and(|(_, v)| same_repository(&v.value, self.target.repository))
        });
        let Some((name_key, name_value)) = field("name") else {
            return Ok(());
        };
        if !ours {
            return Ok(());
        }
        self.matches += 1;
        for (_, value) in fields {
            self.not_shared(value)?;
        }
        let digest = self.target.digest;
        let tag = field("newTag");
        let current = field("digest");
        if current.is_some_and(|(_, v)| v.value == digest) && tag.is_none() {
            return Ok(());
        }
        self.previous.push(match (tag, current) {
            (Some((_, t)), _) => format!("{}:{}", name_value.value, t.value),
            (None, Some((_, d))) => format!("{}@{}", name_value.value, d.value),
            (None, None) => name_value.value.clone(),
        });
        match (current, tag) {
            (Some((_, d)), tag) => {
                if d.value != digest {
                    self.replace_value(d, digest);
                }
                if let Some((k, v)) = tag {
                    let range = self.removal(style, k, v);
                    self.edits.push(Replace {
                        range,
                        replacement: String::new(),
                    });
                }
            }
            // Where newTag was, digest goes: same place, same style.
            (None, Some((k, v))) => self.edits.push(Replace {
                range: k.range.start..self.value_end(v),
                replacement: format!("digest: {digest}"),
            }),
            (None, None) => {
                self.insert_after(style, name_key, name_value, &format!("digest: {digest}"))
            }
        }
        Ok(())
    }
    /// Where a value ends in the text, closing quote included.
    fn value_end(&self, value: &Scalar) -> usize {
        let end = value.range.end;
        let quote = match value.style {
            ScalarStyle::SingleQuoted => Some('\''),
            ScalarStyle::DoubleQuoted => Some('"'),
            _ => None,
        };
        match quote {
            Some(q) if !self.text[value.range.clone()].ends_with(q) => end + 1,
            _ => end,
        }
    }

    /// The bytes to delete to remove `key: value` from a mapping.
    fn removal(&self, style: StructureStyle, key: &Scalar, value: &Scalar) -> Range<usize> {
        let (start, end) = (key.range.start, self.value_end(value));
        match style {
            // The whole line, when the pair is alone on it.
            StructureStyle::Block => {
                let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = self.text[end..]
                    .find('\n')
                    .map_or(self.text.len(), |i| end + i + 1);
                let alone = self.text[line_start..start].trim().is_empty()
                    && self.text[end..line_end].trim().is_empty();
                if alone {
                    line_start..line_end
                } else {
                    start..end
                }
            }
            // The pair and the comma after it (or before it, when it is the last one).
            StructureStyle::Flow => {
                let after = &self.text[end..];
                let spaces = after.len() - after.trim_start().len();
                if after.trim_start().starts_with(',') {
                    let rest = &after[spaces + 1..];
                    start..end + spaces + 1 + (rest.len() - rest.trim_start().len())
                } else {
                    let before = &self.text[..start];
                    let comma = before.trim_end().len() - 1;
                    comma..end
                }
            }
        }
    }
}

/// The tag of `repo:tag[@digest]`, if it has one (a colon after the last slash; before it, the
/// registry's port).
fn written_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => Some(tag),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn run(text: &str) -> Edited {
        run_as(text, REPO, Some("main")).unwrap()
    }

    #[test]
    fn containers_change_and_every_other_byte_stays() {
        let text = "# the web tier\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: migrate\n          image: \"127.0.0.1:5000/team/app:v1\"   # same build\n      containers:\n      - name: app\n        image: 127.0.0.1:5000/team/app:v1\n      - image: 'envoyproxy/envoy:v1.30'\n        name: proxy\n---\nkind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: 127.0.0.1:5000/team/app}]}}}}}\n";
        let edited = run(text);
        let image = format!("127.0.0.1:5000/team/app@{DIGEST}");
        assert_eq!(
            edited.text,
            text.replace("\"127.0.0.1:5000/team/app:v1\"", &format!("\"{image}\""))
                .replace(
                    "image: 127.0.0.1:5000/team/app:v1",
                    &format!("image: {image}")
                )
                .replace(
                    "image: 127.0.0.1:5000/team/app}",
                    &format!("image: {image}}}")
                )
        );
        assert_eq!(edited.matches, 3);
        assert_eq!(
            edited.previous,
            [
                "127.0.0.1:5000/team/app:v1",
                "127.0.0.1:5000/team/app:v1",
                "127.0.0.1:5000/team/app"
            ]
        );
        // Idempotent: a second run changes nothing but still finds the references.
        let again = run(&edited.text);
        assert_eq!(
            (again.text, again.matches, again.previous.len()),
            (edited.text, 3, 0)
        );
    }

    #[test]
    fn helm_values_and_other_repositories() {
        let text = "image: 127.0.0.1:5000/team/app:main\nsidecar:\n  image: 127.0.0.1:5000/team/app-sidecar:v1\nnotes: \"image: 127.0.0.1:5000/team/app:v1\"\n";
        let edited = run(text);
        assert_eq!(
            edited.text,
            text.replacen(
                "127.0.0.1:5000/team/app:main",
                &format!("127.0.0.1:5000/team/app@{DIGEST}"),
                1
            )
        );
    }

    #[test]
    fn kustomization_images_get_a_digest_and_lose_new_tag() {
        let text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\nimages:\n  - name: 127.0.0.1:5000/team/app\n    newTag: \"v1\" # pinned by CI\n  - name: other\n    newTag: v2\n  - name: app\n    newName: 127.0.0.1:5000/team/app\n  - {name: 127.0.0.1:5000/team/app, newTag: v1, digest: sha256:0}\n  - {newTag: v1, name: 127.0.0.1:5000/team/app}\n";
        let edited = run(text);
        let expected = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\nimages:\n  - name: 127.0.0.1:5000/team/app\n    digest: {DIGEST} # pinned by CI\n  - name: other\n    newTag: v2\n  - name: app\n    digest: {DIGEST}\n    newName: 127.0.0.1:5000/team/app\n  - {{name: 127.0.0.1:5000/team/app, digest: {DIGEST}}}\n  - {{digest: {DIGEST}, name: 127.0.0.1:5000/team/app}}\n"
        );
        assert_eq!(edited.text, expected);
        assert_eq!(edited.matches, 4);
        let again = run(&edited.text);
        assert_eq!((again.text, again.matches), (expected, 4));
    }

    #[test]
    fn block_pair_removal_takes_its_line() {
        let text = "images:\n- name: 127.0.0.1:5000/team/app\n  newTag: v1\n  digest: sha256:0\n";
        assert_eq!(
            run(text).text,
            format!("images:\n- name: 127.0.0.1:5000/team/app\n  digest: {DIGEST}\n")
        );
    }

    #[test]
    fn parse_errors_carry_a_position() {
        let repository = ImageName::parse("127.0.0.1:5000/team/app").unwrap();
        let target = Target {
            repository: &repository,
            image: "x",
            digest: DIGEST,
            tag: None,
        };
        let err = edit("a: [1, 2\nb: {", &target).unwrap_err().to_string();
        assert!(
            err.starts_with("is not valid YAML (") && err.contains("line"),
            "{err}"
        );
    }

    const REPO: &str = "127.0.0.1:5000/team/app";

    fn run_as(text: &str, repository: &str, tag: Option<&str>) -> Result<Edited, Problem> {
        let repository = ImageName::parse(repository).unwrap();
        let image = format!("{}@{DIGEST}", repository_spelling(&repository));
        edit(
            text,
            &Target {
                repository: &repository,
                image: &image,
                digest: DIGEST,
                tag,
            },
        )
    }

    fn repository_spelling(name: &ImageName) -> String {
        match name.host.as_str() {
            "registry-1.docker.io" => format!("docker.io/{}", name.path),
            host => format!("{host}/{}", name.path),
        }
    }

    /// `helm create`'s values: `tag: ""` falls back to the chart's appVersion, so the version's
    /// tag goes in front of the digest, inside the quotes the file has.
    #[test]
    fn helm_create_values_get_the_tag_and_the_digest() {
        let text = "replicaCount: 1\nimage:\n  repository: 127.0.0.1:5000/team/app\n  pullPolicy: IfNotPresent\n  # Overrides the image tag whose default is the chart appVersion.\n  tag: \"\"\nserviceAccount:\n  create: true\n";
        let edited = run_as(text, REPO, Some("main")).unwrap();
        assert_eq!(
            edited.text,
            text.replace("tag: \"\"", &format!("tag: \"main@{DIGEST}\""))
        );
        assert_eq!(edited.previous, [format!("{REPO}:")]);
        let again = run_as(&edited.text, REPO, Some("main")).unwrap();
        assert_eq!((again.text, again.matches), (edited.text, 1));
        // Without a known tag an empty tag cannot be filled in: refused, naming the line.
        let refused = run_as(text, REPO, None).unwrap_err();
        assert!(
            matches!(&refused, Problem::Refused { line: 6, message } if message.contains("image.tag of 127.0.0.1:5000/team/app is empty")),
            "{refused}"
        );
    }

    /// Split keys as widely used charts write them: Bitnami's `registry` + `repository` with a
    /// `digest` the chart prefers to the tag (the metrics image beside it is another
    /// repository); ingress-nginx's `registry` + `image` with a digest to replace and a sibling
    /// `digestChroot` left alone; flow style with a tag pinned to an old digest; a mapping with no
    /// tag, which gets one after `repository`.
    #[test]
    fn split_keys_get_the_digest_where_the_chart_takes_it() {
        let old = format!("sha256:{}", "a".repeat(64));
        let cases = [
            (
                "image:\n  registry: 127.0.0.1:5000\n  repository: team/app\n  tag: 1.27.3-debian-12-r0\n  digest: \"\"\nmetrics:\n  image:\n    registry: 127.0.0.1:5000\n    repository: team/app-exporter\n    tag: 1.4.0\n    digest: \"\"\n".to_string(),
                ("digest: \"\"".to_string(), format!("digest: \"{DIGEST}\"")),
                format!("{REPO}:1.27.3-debian-12-r0"),
            ),
            (
                format!("controller:\n  image:\n    registry: 127.0.0.1:5000\n    image: team/app\n    tag: \"v1.12.0\"\n    digest: {old}\n    digestChroot: {old}\n"),
                (format!("digest: {old}"), format!("digest: {DIGEST}")),
                format!("{REPO}@{old}"),
            ),
            (
                format!("web:\n  image: {{repository: {REPO}, tag: main@{old}}}\n"),
                (format!("main@{old}"), format!("1.4.2@{DIGEST}")),
                format!("{REPO}:main@{old}"),
            ),
            (
                format!("worker:\n  image:\n    repository: {REPO}\n    pullPolicy: Always\n"),
                (format!("{REPO}\n"), format!("{REPO}\n    tag: 1.4.2@{DIGEST}\n")),
                REPO.to_string(),
            ),
        ];
        for (text, (from, to), previous) in cases {
            let edited = run_as(&text, REPO, Some("1.4.2")).unwrap();
            assert_eq!(edited.text, text.replacen(&from, &to, 1), "{text}");
            assert_eq!((edited.matches, edited.previous), (1, vec![previous]));
        }
    }

    /// `repo:tag@digest` values keep a tag in front: the version's, or theirs when it is unknown.
    #[test]
    fn tag_and_digest_references_keep_a_tag() {
        let old = format!("sha256:{}", "a".repeat(64));
        let text = format!("image: \"{REPO}:main@{old}\"\n");
        let with_tag = run_as(&text, REPO, Some("1.4.2")).unwrap();
        assert_eq!(with_tag.text, format!("image: \"{REPO}:1.4.2@{DIGEST}\"\n"));
        let without = run_as(&text, REPO, None).unwrap();
        assert_eq!(without.text, format!("image: \"{REPO}:main@{DIGEST}\"\n"));
        assert_eq!(without.previous, [format!("{REPO}:main@{old}")]);
    }

    /// An anchor or alias holding the image is refused with its line; one that holds something
    /// else is no concern.
    #[test]
    fn anchors_and_aliases_holding_the_image_are_refused() {
        let cases = [
            (
                format!(
                    "x-image: &app {REPO}:v1\nspec:\n  containers:\n    - name: a\n      image: *app\n"
                ),
                5,
            ),
            (
                format!(
                    "spec:\n  containers:\n    - name: a\n      image: &app {REPO}:v1\n    - name: b\n      image: *app\n"
                ),
                4,
            ),
            (
                format!(
                    "defaults: &defaults\n  name: a\n  image: {REPO}:v1\ncontainers:\n  - <<: *defaults\n"
                ),
                3,
            ),
            (
                format!("image: &img\n  repository: {REPO}\n  tag: v1\nother:\n  image: *img\n"),
                2,
            ),
            (
                format!("images:\n  - &ours\n    name: {REPO}\n    newTag: v1\n"),
                3,
            ),
        ];
        for (text, line) in cases {
            let refused = run_as(&text, REPO, Some("main")).unwrap_err();
            assert!(
                matches!(&refused, Problem::Refused { line: l, message } if *l == line && message.contains("anchor or alias")),
                "{text}: {refused}"
            );
        }
        let unrelated = format!(
            "x-env: &env [{{name: A, value: b}}]\nspec:\n  containers:\n    - image: {REPO}:v1\n      env: *env\n"
        );
        let edited = run_as(&unrelated, REPO, Some("main")).unwrap();
        assert_eq!(edited.matches, 1);
    }

    #[test]
    fn only_files_naming_the_repository_are_read() {
        let repository = ImageName::parse(REPO).unwrap();
        assert!(mentions("image: {repository: team/app}", &repository));
        assert!(!mentions(
            "image: {{ .Values.image.repository }}",
            &repository
        ));
        let hub = ImageName::parse("nginx").unwrap();
        assert!(mentions("image: nginx:1.27", &hub));
    }
}
