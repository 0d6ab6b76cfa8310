//! The GitHub Action (`action.yml`): the GitOps mode run from the app's own workflow, with no
//! Concourse — commit `repository@digest` into the config repository, push it, and (with cluster
//! inputs, on a runner inside the network) wait read-only for the agent's rollout and revert on
//! failure, exactly as `out` does with `source.git`.
//!
//! The runner starts the image's one binary as `resource action`, each input in an
//! `INPUT_<NAME>` variable (upper-cased, spaces as `_`, hyphens kept). The inputs are turned into
//! the request `out` would get and parsed by the same code, so the validation and the one-line
//! errors are the put's; only the names in them are the inputs' (`input paths` where the put says
//! `source.git.paths`). Outputs go to `$GITHUB_OUTPUT`, a summary to `$GITHUB_STEP_SUMMARY`, and
//! the log into one `::group::`, the error (if any) as `::error::`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use crate::config::{OutRequest, Version};
use crate::error::{Error, Result, comma, one_line, quote};
use crate::gitops::{self, Delivered, Image};
use crate::protocol;
use crate::registry::reference::Reference;

/// How an input's text becomes the request's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// `true` / `false` (YAML 1.2's spellings, as `core.getBooleanInput` reads them).
    Bool,
    /// One item per line, blank lines ignored (`paths`, `workloads`).
    Lines,
    /// PEM text with any number of certificates: one entry of a `ca_certs` list.
    Pem,
}

/// Every input `action.yml` declares: its name, and the key of the put's request it fills
/// (`""`: the image inputs, which make the version instead).
pub const INPUTS: &[(&str, &str)] = &[
    ("image", ""),
    ("repository", ""),
    ("digest", ""),
    ("tag", ""),
    ("uri", "source.git.uri"),
    ("branch", "source.git.branch"),
    ("push-branch", "source.git.push_branch"),
    ("paths", "source.git.paths"),
    ("username", "source.git.username"),
    ("token", "source.git.password"),
    ("private-key", "source.git.private_key"),
    (
        "private-key-passphrase",
        "source.git.private_key_passphrase",
    ),
    ("known-hosts", "source.git.known_hosts"),
    ("author-name", "source.git.author_name"),
    ("author-email", "source.git.author_email"),
    ("insecure", "source.git.insecure"),
    ("ca-certs", "source.git.ca_certs"),
    ("flux-namespace", "source.git.flux_namespace"),
    ("namespace", "source.namespace"),
    ("deployment", "source.deployment"),
    ("workloads", "source.workloads"),
    ("container", "source.container"),
    ("kubeconfig", "source.kubeconfig"),
    ("context", "source.context"),
    ("kubernetes-server", "source.server"),
    ("kubernetes-token", "source.token"),
    ("kubernetes-ca", "source.certificate_authority"),
    ("timeout", "params.timeout"),
    ("restore-timeout", "params.restore_timeout"),
    ("wait", "params.wait"),
    ("rollback", "params.rollback_on_failure"),
];

/// The outputs `action.yml` declares, in the order they are written.
pub const OUTPUTS: [&str; 6] = [
    "commit",
    "changed",
    "previous-images",
    "files",
    "branch",
    "image",
];

fn kind(key: &str) -> Kind {
    match key {
        "source.git.insecure" | "params.wait" | "params.rollback_on_failure" => Kind::Bool,
        "source.git.paths" | "source.workloads" => Kind::Lines,
        "source.git.ca_certs" => Kind::Pem,
        _ => Kind::Text,
    }
}

/// The variable the runner passes an input in.
fn variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

/// Runs the action; the entry point of `resource action`.
pub fn run() -> ExitCode {
    eprintln!("image-rollout-resource {} action", crate::VERSION);
    let inputs: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("INPUT_"))
        .collect();
    eprintln!("::group::image-rollout");
    let result = request(&inputs).and_then(|(request, version)| {
        let runtime = protocol::runtime()?;
        let pushed = request.source.git.as_ref().map(|g| g.uri.clone());
        let delivered = runtime.block_on(gitops::deliver(request, Image::Given(version)))?;
        report(&delivered, pushed.as_deref().unwrap_or_default())
    });
    eprintln!("::endgroup::");
    match result {
        Ok(line) => {
            eprintln!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line = renamed(&one_line(&e.to_string()));
            eprintln!("::error title=image-rollout::{}", escape(&line));
            ExitCode::FAILURE
        }
    }
}

/// The put's request and the version to deploy, from the inputs.
fn request(inputs: &BTreeMap<String, String>) -> Result<(OutRequest, Version)> {
    let known: BTreeMap<String, &str> = INPUTS
        .iter()
        .map(|(name, key)| (variable(name), *key))
        .collect();
    let unknown: Vec<&str> = inputs
        .keys()
        .filter(|k| !known.contains_key(*k))
        .map(|k| k.trim_start_matches("INPUT_"))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Request(format!(
            "unknown input {} (the runner passes `with:` keys upper-cased); the inputs are {}",
            comma(unknown.iter().map(|u| quote(&u.to_lowercase()))),
            comma(INPUTS.iter().map(|(n, _)| n))
        )));
    }
    let given = |name: &str| {
        inputs
            .get(&variable(name))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    for (name, what) in [
        (
            "uri",
            "the config repository (https://github.com/OWNER/config.git)",
        ),
        (
            "paths",
            "the files or directories with the manifests, one per line",
        ),
    ] {
        if given(name).is_none() {
            return Err(Error::Request(format!(
                "input {name}: missing; set it to {what}"
            )));
        }
    }
    let mut request = json!({"source": {"git": {}}, "params": {}});
    for (name, key) in INPUTS.iter().filter(|(_, key)| !key.is_empty()) {
        let Some(text) = given(name) else { continue };
        let value = match kind(key) {
            Kind::Text => json!(text),
            Kind::Bool => match text {
                "true" | "True" | "TRUE" => json!(true),
                "false" | "False" | "FALSE" => json!(false),
                _ => {
                    return Err(Error::Request(format!(
                        "input {name}: {} is not a boolean; use true or false",
                        quote(text)
                    )));
                }
            },
            Kind::Lines => json!(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
            ),
            Kind::Pem => json!([text]),
        };
        set(&mut request, key, value);
    }
    // A token over https needs a user name, and any works with GitHub's tokens.
    if given("token").is_some() && given("username").is_none() {
        set(&mut request, "source.git.username", json!("x-access-token"));
    }
    let (repository, version) = version(given("image"), given("repository"), given("digest"))?;
    let version = Version {
        tag: given("tag").map(str::to_string).or(version.tag),
        ..version
    };
    set(&mut request, "source.repository", json!(repository));
    let request: OutRequest = protocol::parse_request(&request.to_string())?;
    Ok((request, version))
}

/// The repository and version from `image` (`repo[:tag]@sha256:…`) or `repository` + `digest`
/// (as `docker/build-push-action` outputs them).
fn version(
    image: Option<&str>,
    repository: Option<&str>,
    digest: Option<&str>,
) -> Result<(String, Version)> {
    let bad = |message: String| Error::Request(message);
    match (image, repository, digest) {
        (Some(image), None, None) => {
            let reference: Reference = image
                .parse()
                .map_err(|e| bad(format!("input image: {} is not an image reference ({e})", quote(image))))?;
            let Some(digest) = reference.digest else {
                return Err(bad(format!(
                    "input image: {} has no digest; give repo@sha256:… (docker/build-push-action's `digest` output after the repository)",
                    quote(image)
                )));
            };
            let digest = digest
                .parse()
                .map_err(|e| bad(format!("input image: {e}")))?;
            let repository = image.split('@').next().unwrap_or_default();
            let repository = match &reference.tag {
                Some(tag) => repository
                    .strip_suffix(&format!(":{tag}"))
                    .unwrap_or(repository),
                None => repository,
            };
            Ok((
                repository.to_string(),
                Version {
                    digest,
                    tag: reference.tag,
                },
            ))
        }
        (None, Some(repository), Some(digest)) => {
            let digest = digest
                .parse()
                .map_err(|e| bad(format!("input digest: {e}")))?;
            Ok((repository.to_string(), Version { digest, tag: None }))
        }
        (Some(_), _, _) => Err(bad(
            "input image: set either image or repository and digest, not both".into(),
        )),
        (None, None, _) => Err(bad(
            "input image: missing; set image: repo@sha256:…, or repository and digest".into(),
        )),
        (None, Some(_), None) => Err(bad(
            "input digest: missing; set it to the digest the build pushed (docker/build-push-action's `digest` output)".into(),
        )),
    }
}

/// Sets `request.<key>` (a dotted path), creating the objects on the way.
fn set(request: &mut Value, key: &str, value: Value) {
    let mut at = request;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let object: &mut Map<String, Value> = at.as_object_mut().expect("objects on the way");
        if parts.peek().is_none() {
            object.insert(part.to_string(), value);
            return;
        }
        at = object.entry(part).or_insert_with(|| json!({}));
    }
}

/// The put's error line with the request's keys named as the inputs that filled them.
fn renamed(line: &str) -> String {
    let mut keys: Vec<(&str, &str)> = INPUTS
        .iter()
        .filter(|(_, key)| !key.is_empty())
        .map(|(name, key)| (*key, *name))
        .chain([
            ("source.repository", "repository"),
            ("params.digest", "digest"),
        ])
        .collect();
    // Longest first: `source.git.private_key_passphrase` before `source.git.private_key`.
    keys.sort_by_key(|(key, _)| std::cmp::Reverse(key.len()));
    let mut line = line
        .strip_prefix("invalid request: ")
        .unwrap_or(line)
        .to_string();
    for (key, name) in keys {
        line = line.replace(key, &format!("input {name}"));
    }
    line
}

/// Workflow command data: `%`, CR and LF escaped, as the runner unescapes them.
fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Writes the outputs and the step summary; returns the line that says what happened.
fn report(delivered: &Delivered, uri: &str) -> Result<String> {
    let field = |name: &str| {
        delivered
            .output
            .metadata
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value.clone())
            .unwrap_or_default()
    };
    let commit = delivered.commit.clone().unwrap_or_default();
    let values = [
        commit.clone(),
        delivered.commit.is_some().to_string(),
        comma(&delivered.previous),
        comma(&delivered.files),
        field("branch"),
        field("image"),
    ];
    let mut outputs = String::new();
    for (name, value) in OUTPUTS.iter().zip(&values) {
        // The multi-line form, so that no value can end the output early or start another.
        let delimiter = format!("ghadelimiter_{:016x}", rand::random::<u64>());
        outputs.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    append("GITHUB_OUTPUT", &outputs)?;

    let (image, branch) = (field("image"), field("branch"));
    let link = commit_link(uri, &commit);
    let mut summary = match &delivered.commit {
        Some(_) => format!(
            "### Deployed `{image}`\n\nPushed {link} to `{branch}` of {uri}: {}\n",
            comma(delivered.files.iter().map(|f| format!("`{f}`")))
        ),
        None => format!(
            "### `{image}` is already deployed\n\n`{branch}` of {uri} already has it in {}; nothing to commit.\n",
            comma(delivered.files.iter().map(|f| format!("`{f}`")))
        ),
    };
    if !delivered.previous.is_empty() {
        summary.push_str(&format!(
            "\nBefore: {}\n",
            comma(delivered.previous.iter().map(|p| format!("`{p}`")))
        ));
    }
    let rollout = field("workloads");
    if !rollout.is_empty() {
        summary.push_str(&format!(
            "\nRolled out: {rollout} in namespace `{}` (revision {}), in {}\n",
            field("namespace"),
            field("revision"),
            field("duration")
        ));
    }
    append("GITHUB_STEP_SUMMARY", &summary)?;
    Ok(match &delivered.commit {
        Some(commit) => format!("deployed {image}: {commit} on {branch} of {uri}"),
        None => format!("{image} was already deployed on {branch} of {uri}"),
    })
}

/// A link to `commit` when the config repository is on the workflow's own GitHub
/// (`GITHUB_SERVER_URL`), else the commit id.
fn commit_link(uri: &str, commit: &str) -> String {
    let server = std::env::var("GITHUB_SERVER_URL").unwrap_or_default();
    let host = server
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/');
    // https://HOST/OWNER/REPO(.git), ssh://git@HOST/OWNER/REPO(.git), git@HOST:OWNER/REPO(.git)
    let path = [
        format!("https://{host}/"),
        format!("ssh://git@{host}/"),
        format!("git@{host}:"),
    ]
    .iter()
    .find_map(|prefix| uri.strip_prefix(prefix.as_str()))
    .filter(|_| !host.is_empty());
    match path {
        Some(path) => format!(
            "[`{}`]({}/{}/commit/{commit})",
            &commit[..commit.len().min(12)],
            server.trim_end_matches('/'),
            path.trim_end_matches('/').trim_end_matches(".git")
        ),
        None => format!("`{commit}`"),
    }
}

/// Appends `text` to the file the runner names in `$variable`; without one (run by hand), prints
/// it to stderr instead.
fn append(variable: &str, text: &str) -> Result<()> {
    let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) else {
        eprintln!("{variable} is not set; what it would get:\n{text}");
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::File {
            path: path.to_string_lossy().into_owned(),
            message: format!("cannot append ${variable} ({e})"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_become_the_put_request() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let inputs: BTreeMap<String, String> = [
            ("INPUT_IMAGE", format!("ghcr.io/o/app:main@{digest}")),
            ("INPUT_URI", "https://github.com/o/config.git".into()),
            ("INPUT_PATHS", "deploy/\n\n  apps/app.yaml \n".into()),
            ("INPUT_TOKEN", "t0ken".into()),
            ("INPUT_PUSH-BRANCH", "deploy/app".into()),
            ("INPUT_INSECURE", "false".into()),
            ("INPUT_WAIT", "".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let (request, version) = request(&inputs).unwrap();
        assert_eq!(request.source.repository, "ghcr.io/o/app");
        assert_eq!(version.tag.as_deref(), Some("main"));
        assert_eq!(version.digest.to_string(), digest);
        let git = request.source.git.unwrap();
        assert_eq!(git.paths, ["deploy/", "apps/app.yaml"]);
        assert_eq!(git.username.as_deref(), Some("x-access-token"));
        assert_eq!(git.password.unwrap().expose(), "t0ken");
        assert_eq!(git.push_branch.as_deref(), Some("deploy/app"));
        assert_eq!(request.params.wait, None);
    }

    #[test]
    fn errors_name_the_inputs() {
        assert_eq!(
            renamed(
                "invalid request: source.git.private_key_passphrase: is for ssh URIs; check source.git.branch"
            ),
            "input private-key-passphrase: is for ssh URIs; check input branch"
        );
    }
}
