//! Every type Concourse hands us on stdin, and the version we hand back.
//!
//! All structs reject unknown keys: a misspelt `pasword:` must fail the step loudly rather than
//! silently pulling anonymously. Secrets are wrapped in [`Secret`], whose `Debug` is redacted and
//! which has no `Display`, so they cannot end up in a log line or an error by accident.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use oci_spec::image::Sha256Digest;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::quote;

/// `source:` — shared by `check`, `in` and `out`.
///
/// ```
/// let source: image_rollout_resource::Source = serde_json::from_str(
///     r#"{"repository": "ghcr.io/werdnum/family-assistant", "deployment": "family-assistant"}"#,
/// ).unwrap();
/// assert_eq!(source.tag(), "latest");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `registry/name` without tag or digest; Docker Hub short names are allowed.
    pub repository: String,
    /// The one tag to follow (`latest` when no policy key below is set either).
    pub tag: Option<String>,
    // Tag policies: follow releases instead of one tag, with registry-image-resource's keys and
    // meanings (src/check/policy.rs says which combinations are refused and where we differ).
    /// Follow the highest semver tag that meets this constraint (Masterminds syntax, `>= 1.2, < 2`).
    pub semver_constraint: Option<String>,
    /// Follow the tags this regular expression matches (the whole tag), the last listed newest.
    pub tag_regex: Option<String>,
    /// Semver tags with a pre-release (`1.2.0-rc.1`) count too.
    #[serde(default)]
    pub pre_releases: bool,
    /// Pre-release words accepted besides `alpha`, `beta` and `rc`.
    #[serde(default)]
    pub pre_release_prefixes: Vec<String>,
    /// Follow semver tags with this suffix (`1.2.3-alpine` for `alpine`).
    pub variant: Option<String>,
    /// registry-image-resource's ordering by image creation time: refused with the reason
    /// (it costs three requests per matching tag, every check).
    #[serde(default)]
    pub created_at_sort: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Follow one platform's manifest inside a multi-arch index instead of the index itself.
    pub platform: Option<Platform>,
    /// Plain http to the registry and no TLS verification anywhere (token realm included).
    #[serde(default)]
    pub insecure: bool,
    /// Extra PEM CA certificates trusted for the registry and its token realm.
    #[serde(default)]
    pub ca_certs: Vec<Certificates>,
    /// Deploy only digests with a cosign signature this accepts (see [`Verify`]).
    pub verify: Option<Verify>,

    // Cluster keys: only `out` uses them; `check` and `in` accept and ignore them so that one
    // `source:` block serves all three steps. The first four may be overridden in `params`.
    // (Not a flattened struct: serde cannot combine `flatten` with `deny_unknown_fields`.)
    pub namespace: Option<String>,
    /// Shorthand for `workloads: [deployment/<name>]`.
    pub deployment: Option<String>,
    pub workloads: Option<Vec<WorkloadRef>>,
    /// Container to update; by default every container whose image is `source.repository`.
    pub container: Option<String>,
    pub kubeconfig: Option<Secret>,
    pub context: Option<String>,
    /// `kubeconfig` may carry credentials of users its context does not use (refused otherwise:
    /// a copy of an admin's kubeconfig would hand the admin's key to whoever reads the var).
    #[serde(default)]
    pub allow_unused_credentials: bool,
    pub server: Option<String>,
    pub token: Option<Secret>,
    pub certificate_authority: Option<Certificates>,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,

    /// GitOps mode: `out` commits the digest to this repository instead of patching the cluster.
    pub git: Option<GitSource>,
}

/// `source.git`: the config repository `out` writes the digest into (GitOps mode).
///
/// ```
/// let git: image_rollout_resource::config::GitSource = serde_json::from_str(
///     r#"{"uri": "https://github.com/o/config.git", "paths": ["deploy/"]}"#,
/// ).unwrap();
/// assert_eq!(git.branch, "main");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    /// `https://host/owner/repo.git` (`http://` only with `insecure`), or ssh:
    /// `ssh://[user@]host[:port]/path` and scp-like `[user@]host:path`.
    pub uri: String,
    /// The branch to commit on top of.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Push here instead of to `branch` (created if missing, fast-forward otherwise), for a
    /// protected `branch` updated through a pull request; the commit goes on top of this branch
    /// when it holds `branch` plus commits not merged yet, else on top of `branch`.
    pub push_branch: Option<String>,
    /// Files or directories (searched recursively for `*.yaml` / `*.yml`), relative to the root.
    pub paths: Vec<String>,
    pub username: Option<String>,
    /// Password or access token for `username`.
    pub password: Option<Secret>,
    /// The ssh private key (a deploy key), OpenSSH or PEM: ed25519, ECDSA or RSA.
    pub private_key: Option<Secret>,
    /// Decrypts `private_key` when it is encrypted.
    pub private_key_passphrase: Option<Secret>,
    /// OpenSSH `known_hosts` lines for the ssh server (`ssh-keyscan -p PORT HOST`); required with
    /// ssh, as host keys are always verified.
    pub known_hosts: Option<String>,
    #[serde(default = "default_author_name")]
    pub author_name: String,
    #[serde(default = "default_author_email")]
    pub author_email: String,
    /// `http://` allowed and no TLS verification, as `source.insecure` for the registry.
    #[serde(default)]
    pub insecure: bool,
    /// Extra PEM CA certificates for the Git server.
    #[serde(default)]
    pub ca_certs: Vec<Certificates>,
    /// Where Flux's GitRepository and Kustomization for this repository live, read after a
    /// revert (default: the put's namespace; often `flux-system`).
    pub flux_namespace: Option<String>,
}

impl GitSource {
    /// Where commits are pushed: `push_branch`, or `branch`.
    pub fn pushed_branch(&self) -> &str {
        self.push_branch.as_deref().unwrap_or(&self.branch)
    }
}

fn default_branch() -> String {
    "main".into()
}

fn default_author_name() -> String {
    "image-rollout".into()
}

fn default_author_email() -> String {
    "image-rollout@localhost".into()
}

/// `source.verify`: whose cosign signatures make a digest deployable. A digest passes when one
/// signature on it verifies with one of `public_keys`, or is a keyless signature matching
/// `keyless`. Nothing is fetched from Sigstore: keys and the trusted root come in as data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// PEM public keys (`cosign.pub`, ECDSA P-256 or P-384).
    #[serde(default)]
    pub public_keys: Vec<String>,
    pub keyless: Option<Keyless>,
    /// In-toto attestations the digest must carry, each signed as above: with any, a digest is
    /// deployable only if every one is met (a signature alone no longer is).
    #[serde(default)]
    pub attestations: Vec<AttestationPolicy>,
}

/// One entry of `source.verify.attestations`: a signed in-toto statement about the digest, of
/// `predicate_type`, whose SLSA provenance (v0.2 or v1) names these, exactly.
///
/// ```
/// let policy: image_rollout_resource::config::AttestationPolicy = serde_json::from_str(
///     r#"{"predicate_type": "https://slsa.dev/provenance/v1", "source_repository": "https://github.com/o/app"}"#,
/// ).unwrap();
/// assert_eq!(policy.builder_id, None);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// `https://slsa.dev/provenance/v1` (GitHub's attest-build-provenance), or
    /// `https://slsa.dev/provenance/v0.2` (`cosign attest --type slsaprovenance`).
    pub predicate_type: String,
    /// The builder: `runDetails.builder.id` (v1), `builder.id` (v0.2).
    pub builder_id: Option<String>,
    /// The source repository: the workflow's `repository` (v1), `invocation.configSource.uri`
    /// without `git+` and `@ref` (v0.2).
    pub source_repository: Option<String>,
    /// The source ref (`refs/heads/main`): the workflow's `ref` (v1), the `@ref` of
    /// `invocation.configSource.uri` (v0.2).
    pub source_ref: Option<String>,
}

/// Keyless (Fulcio certificate) signatures: who must have signed, as the certificate says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyless {
    /// The certificate's subject alternative name, exactly: for GitHub Actions the workflow,
    /// `https://github.com/OWNER/REPO/.github/workflows/FILE.yml@refs/heads/main`.
    pub identity: String,
    /// The OIDC issuer, exactly: `https://token.actions.githubusercontent.com` for GitHub Actions.
    pub issuer: String,
    /// The text of Sigstore's `trusted_root.json` (Fulcio CAs and Rekor keys).
    pub trusted_root: String,
}

impl Source {
    /// `source.tag`, or `latest`: the tag followed when no tag policy is set.
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

/// A version: the manifest digest, which alone says what is deployed, and the tag it was found
/// under (what a person reads; versions recorded before tags were reported have none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `check` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub source: Source,
    pub version: Option<Version>,
}

/// `in` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InRequest {
    pub source: Source,
    pub version: Version,
    #[serde(default)]
    pub params: InParams,
}

/// `get` params. Layers are never downloaded, so `skip_download` (registry-image-resource's key)
/// is accepted for drop-in use and changes nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InParams {
    #[serde(default)]
    pub skip_download: bool,
}

/// `out` request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutRequest {
    pub source: Source,
    #[serde(default)]
    pub params: OutParams,
}

/// `put` params.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutParams {
    /// Directory (relative to the build's working directory) of a `get` step holding
    /// `repository` and `digest` files.
    pub image: Option<String>,
    pub digest: Option<Digest>,
    /// How long to wait for the rollout (`10m`, `90s`).
    #[serde(default, with = "duration")]
    pub timeout: Option<Duration>,
    pub wait: Option<bool>,
    pub rollback_on_failure: Option<bool>,
    /// GitOps mode: how long to wait, after pushing a revert, for the agent to bring the
    /// previous images back (`5m` by default; `timeout` is the deploy's own bound).
    #[serde(default, with = "duration")]
    pub restore_timeout: Option<Duration>,
    #[serde(default)]
    pub dry_run: bool,
    /// The bearer token for `source.server`, instead of `source.token`: where a build's Concourse
    /// ID token goes. Not in `source`, because Concourse keys a resource's version history by its
    /// source: a token that is new every build would start a new history at every check.
    pub token: Option<Secret>,
    // Per-put overrides of the `source` keys of the same name.
    pub namespace: Option<String>,
    /// Shorthand for `workloads: [deployment/<name>]`.
    pub deployment: Option<String>,
    pub workloads: Option<Vec<WorkloadRef>>,
    /// Container to update; by default every container whose image is `source.repository`.
    pub container: Option<String>,
}

/// A password, token or kubeconfig: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// PEM certificates (`ca_certs` entries, `certificate_authority`), checked as the request is read
/// so that a wrong paste fails with its key's path (`source.ca_certs[1]: …`).
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Certificates {
    pem: String,
    der: Vec<CertificateDer<'static>>,
}

impl Certificates {
    /// The text as given.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn der(&self) -> &[CertificateDer<'static>] {
        &self.der
    }
}

impl TryFrom<String> for Certificates {
    type Error = String;
    fn try_from(pem: String) -> Result<Self, String> {
        let der = crate::pem::certificates(pem.as_bytes())?;
        Ok(Certificates { pem, der })
    }
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} PEM certificates>", self.der.len())
    }
}

/// `os/arch` or `os/arch/variant`, as in `docker --platform`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl TryFrom<String> for Platform {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "{} is not a platform; use os/arch or os/arch/variant, e.g. linux/arm64",
                quote(&s)
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// `kind/name` of a workload `out` may roll.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl TryFrom<String> for WorkloadRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (kind, name) = s.split_once('/').unwrap_or(("", &s));
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deploy" | "deployments" => WorkloadKind::Deployment,
            "statefulset" | "sts" | "statefulsets" => WorkloadKind::StatefulSet,
            "daemonset" | "ds" | "daemonsets" => WorkloadKind::DaemonSet,
            _ => {
                return Err(format!(
                    "{} is not a workload; use deployment/NAME, statefulset/NAME or daemonset/NAME",
                    quote(&s)
                ));
            }
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{} has no valid name after the kind", quote(&s)));
        }
        Ok(WorkloadRef {
            kind,
            name: name.into(),
        })
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        };
        write!(f, "{kind}/{}", self.name)
    }
}

/// A `sha256:<64 hex>` manifest digest.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(Sha256Digest);

impl Digest {
    /// The digest of `bytes`, as a registry computes it.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256Digest::from_str(&hex::encode(Sha256::digest(bytes))).expect("64 hex digits"))
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.strip_prefix("sha256:")
            .and_then(|hex| Sha256Digest::from_str(hex).ok())
            .map(Digest)
            .ok_or_else(|| {
                format!(
                    "{} is not a digest; expected sha256:<64 hex digits>",
                    quote(s)
                )
            })
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.digest())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Durations as people write them in pipelines: `10m`, `90s`, `1h30m`.
mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "{} is not a duration ({e}); use e.g. 90s or 10m",
                crate::error::quote(&s)
            ))
        })
    }
}
