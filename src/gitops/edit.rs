//! Rewriting image references inside YAML text without reformatting it.
//!
//! A YAML library that parses and re-emits a file loses comments, quoting, key order and
//! indentation, and a config repository's reviewers read every byte of the diff. So the file is
//! only *parsed* (events with byte spans), the values to change are located, and exactly those
//! byte ranges are replaced; everything else is copied through untouched.
//!
//! Two shapes are rewritten to `repository@digest`:
//! - any mapping value under the key `image` that names an image of the repository — containers
//!   and initContainers of every workload kind, Pods, CronJobs, and Helm values written as
//!   `image: repo:tag`;
//! - kustomization `images:` entries whose `name` or `newName` is the repository: `digest` is set
//!   and `newTag` dropped (kustomize would otherwise apply both).

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
}

/// Edits `text`; the error is the parser's message with its position.
pub fn edit(text: &str, target: &Target) -> Result<Edited, String> {
    let mut walker = Walker {
        text,
        target,
        stack: Vec::new(),
        edits: Vec::new(),
        matches: 0,
        previous: Vec::new(),
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| e.to_string())?;
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
        /// This mapping is an entry of an `images:` sequence (a kustomization image).
        images_entry: bool,
        /// Scalar key → scalar value pairs, for kustomization entries.
        fields: Vec<(Scalar, Scalar)>,
    },
    Seq {
        role: Role,
        /// The mapping key this sequence is the value of.
        key: Option<String>,
    },
}

struct Walker<'a> {
    text: &'a str,
    target: &'a Target<'a>,
    stack: Vec<Frame>,
    edits: Vec<Replace>,
    matches: usize,
    previous: Vec<String>,
}

impl Walker<'_> {
    fn event(&mut self, event: Event, span: Span) -> Result<(), String> {
        match event {
            Event::Scalar(value, style, _, _) => {
                let range = span.byte_range().ok_or("the parser gave no byte offsets")?;
                let scalar = Scalar {
                    value: value.into_owned(),
                    range,
                    style,
                    column: span.start.col(),
                };
                self.scalar(scalar);
            }
            Event::Alias(_) => self.scalar_placeholder(),
            Event::MappingStart(style, _, _) => {
                let (role, images_entry) = self.child_role();
                self.stack.push(Frame::Map {
                    role,
                    style,
                    key: None,
                    images_entry,
                    fields: Vec::new(),
                });
            }
            Event::SequenceStart(..) => {
                let key = match self.stack.last() {
                    Some(Frame::Map { key: Some(k), .. }) => Some(k.value.clone()),
                    _ => None,
                };
                let (role, _) = self.child_role();
                self.stack.push(Frame::Seq { role, key });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    role,
                    style,
                    images_entry,
                    fields,
                    ..
                }) = self.stack.pop()
                {
                    if images_entry {
                        self.kustomize_entry(style, &fields);
                    }
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
                Role::Key => Some(Scalar {
                    value: String::new(),
                    range: 0..0,
                    style: ScalarStyle::Plain,
                    column: 0,
                }),
                _ => None,
            };
        }
    }

    fn scalar_placeholder(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = match key {
                None => Some(Scalar {
                    value: String::new(),
                    range: 0..0,
                    style: ScalarStyle::Plain,
                    column: 0,
                }),
                Some(_) => None,
            };
        }
    }

    fn scalar(&mut self, scalar: Scalar) {
        let Some(Frame::Map { key, fields, .. }) = self.stack.last_mut() else {
            return;
        };
        let Some(k) = key.take() else {
            *key = Some(scalar);
            return;
        };
        let is_image = k.value == "image";
        fields.push((k, scalar.clone()));
        if is_image && same_repository(&scalar.value, self.target.repository) {
            self.matches += 1;
            if scalar.value != self.target.image {
                self.previous.push(scalar.value.clone());
                self.replace_value(&scalar, self.target.image);
            }
        }
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
        self.edits.push(Replace {
            range,
            replacement: value.to_string(),
        });
    }

    /// A kustomization `images:` entry of the repository: set `digest`, drop `newTag`.
    fn kustomize_entry(&mut self, style: StructureStyle, fields: &[(Scalar, Scalar)]) {
        let field = |name: &str| fields.iter().find(|(k, _)| k.value == name);
        let ours = ["name", "newName"].iter().any(|n| {
            field(n).is_some_and(|(_, v)| same_repository(&v.value, self.target.repository))
        });
        let Some((name_key, name_value)) = field("name") else {
            return;
        };
        if !ours {
            return;
        }
        self.matches += 1;
        let digest = self.target.digest;
        let tag = field("newTag");
        let current = field("digest");
        if current.is_some_and(|(_, v)| v.value == digest) && tag.is_none() {
            return;
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
                let at = self.value_end(name_value);
                let replacement = match style {
                    StructureStyle::Flow => format!(", digest: {digest}"),
                    StructureStyle::Block => {
                        format!("\n{}digest: {digest}", " ".repeat(name_key.column))
                    }
                };
                self.edits.push(Replace {
                    range: at..at,
                    replacement,
                });
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn run(text: &str) -> Edited {
        let repository = ImageName::parse("127.0.0.1:5000/team/app").unwrap();
        let image = format!("127.0.0.1:5000/team/app@{DIGEST}");
        edit(
            text,
            &Target {
                repository: &repository,
                image: &image,
                digest: DIGEST,
            },
        )
        .unwrap()
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
        };
        let err = edit("a: [1, 2\nb: {", &target).unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
