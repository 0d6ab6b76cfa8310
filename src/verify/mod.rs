//! `source.verify`: a digest is deployable only if cosign signed it the way the pipeline expects,
//! and (with `attestations`) carries the attestations it demands.
//!
//! Two layouts are read, cheapest first:
//!
//! - the legacy one (cosign before v3 by default), this module: the signatures of
//!   `repo@sha256:H` are the image `repo:sha256-H.sig` (two requests);
//! - Sigstore bundles attached as OCI referrers (cosign v3 by default, v2.4+ with
//!   `--new-bundle-format`, GitHub's attestations), [`bundle`]: the referrers API or the tag
//!   schema, then two requests per bundle. Attestations are only ever bundles.
//!
//! In the legacy layout, one layer per
//! signature, whose blob is the signed "simple signing" payload (JSON naming
//! `critical.image.docker-manifest-digest`) and whose annotations carry the signature and, for
//! keyless signatures, the Fulcio certificate and the Rekor bundle (its chain annotation is not
//! read: the chain comes from the trusted root alone). A signature counts
//! when its payload names exactly the digest in question and either one of the configured public
//! keys verifies it or it is a keyless signature that [`keyless`] accepts.
//!
//! The cryptography is ring's (already linked for TLS) and rustls-webpki's certificate path
//! validation; [`der`] reads the few certificate fields those do not expose, and [`sct`]
//! checks a keyless certificate's certificate-transparency receipts.

pub mod attestation;
pub mod bundle;
pub mod der;
pub mod key;
pub mod keyless;
pub mod sct;
mod trusted_root;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;

use crate::config::{Digest, Source, Verify};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::registry::manifest::{self, Manifest};
use crate::registry::referrers::{Found, tag_schema};
use bundle::attached::Attached;
use bundle::{BundlePolicy, Subject, Verified};
pub use key::PublicKey;
use keyless::KeylessPolicy;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
const BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// More signature layers than this is not a signature image a CI made; refuse to fetch them all.
const MAX_SIGNATURES: usize = 32;

/// `source.verify`, parsed and checked once per step.
#[derive(Debug)]
pub struct Verifier {
    keys: Vec<PublicKey>,
    keyless: Option<KeylessPolicy>,
    /// Made when a bundle is first read: a digest signed in the legacy layout never maps the
    /// Sigstore verifier's code (0.5 MiB of a check's RSS).
    bundles: std::cell::OnceCell<BundlePolicy>,
    /// The keys' DER, for [`BundlePolicy::new`].
    spkis: Vec<Vec<u8>>,
    /// `source.verify` as given: the keyless policy and trusted root for the bundles, and
    /// `attestations`.
    verify: Verify,
}

/// How a digest's signature was found: what `in` and `out` log, and what the benchmark counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `cosign .sig tag`, `Sigstore bundle (referrers API)`, `… (referrers tag schema)`.
    pub layout: &'static str,
    /// Registry requests the verification took.
    pub requests: usize,
}

/// Why a digest is not deployable (as opposed to a registry that could not be asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl Verifier {
    /// Checks `source.verify` before anything touches the network, naming the bad key.
    pub fn new(verify: &Verify) -> Result<Verifier> {
        let mut spkis = Vec::new();
        let keys = verify
            .public_keys
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                let blocks: Vec<_> =
                    SubjectPublicKeyInfoDer::pem_slice_iter(pem.as_bytes()).collect();
                match blocks.as_slice() {
                    [Ok(spki)] => {
                        spkis.push(spki.to_vec());
                        PublicKey::from_spki(spki)
                    }
                    _ => Err("expected exactly one PEM `PUBLIC KEY` block".into()),
                }
                .map_err(|e| Error::ConfigEntry {
                    key: "source.verify.public_keys",
                    index: i,
                    message: format!("{e} (the contents of cosign.pub)"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let keyless = verify
            .keyless
            .as_ref()
            .map(KeylessPolicy::new)
            .transpose()?;
        if keys.is_empty() && keyless.is_none() {
            return Err(Error::Config {
                key: "source.verify",
                message:
                    "give public_keys, keyless, or both; an empty verify block would accept nothing"
                        .into(),
            });
        }
        for (index, policy) in verify.attestations.iter().enumerate() {
            let empty = [
                ("predicate_type", Some(&policy.predicate_type)),
                ("builder_id", policy.builder_id.as_ref()),
                ("source_repository", policy.source_repository.as_ref()),
                ("source_ref", policy.source_ref.as_ref()),
            ]
            .into_iter()
            .find(|(_, value)| value.is_some_and(|v| v.trim().is_empty()));
            if let Some((key, _)) = empty {
                return Err(Error::ConfigEntry {
                    key: "source.verify.attestations",
                    index,
                    message: format!(
                        "{key} is empty, which no attestation matches; give the value to match exactly, or leave the key out"
                    ),
                });
            }
        }
        Ok(Verifier {
            keys,
            keyless,
            bundles: std::cell::OnceCell::new(),
            spkis,
            verify: verify.clone(),
        })
    }

    /// The bundle verification, made on first use.
    fn bundles(&self) -> Result<&BundlePolicy> {
        if let Some(bundles) = self.bundles.get() {
            return Ok(bundles);
        }
        let keyless = self.verify.keyless.as_ref();
        let bundles = BundlePolicy::new(
            self.spkis.clone(),
            keyless.map(|k| (k.identity.clone(), k.issuer.clone())),
            keyless.map(|k| k.trusted_root.as_str()),
        )
        .map_err(|message| Error::Config {
            key: "source.verify.keyless.trusted_root",
            message,
        })?;
        Ok(self.bundles.get_or_init(|| bundles))
    }

    /// Whether `digest` carries a signature this verifier accepts (and every attestation it
    /// demands). `Err` only when the registry could not be asked; a missing or bad signature is
    /// `Ok(Err(Rejected))`.
    pub async fn verify(
        &self,
        registry: &Registry,
        digest: &Digest,
    ) -> Result<Result<Accepted, Rejected>> {
        if !self.verify.attestations.is_empty() {
            return self.attested(registry, digest).await;
        }
        let legacy = self.legacy(registry, digest).await?;
        let reason = match legacy.outcome {
            Ok(()) => {
                return Ok(Ok(Accepted {
                    layout: "cosign .sig tag",
                    requests: legacy.requests,
                }));
            }
            Err(reason) => reason,
        };
        let attached = bundle::attached::attached(registry, digest).await?;
        let (verified, refused) = self.verify_bundles(&attached, digest)?;
        if !verified.is_empty() {
            return Ok(Ok(Accepted {
                layout: layout(attached.found),
                requests: legacy.requests + attached.requests,
            }));
        }
        let reason = match (reason, attached.bundles.is_empty()) {
            // Neither layout has anything: one sentence for the common case of an unsigned build.
            (LegacyRefusal::NoTag(tag), true) => format!(
                "it has no cosign signature (no tag {tag}; {})",
                no_bundle(attached.found, digest)
            ),
            (reason, true) => format!("{reason}; {}", no_bundle(attached.found, digest)),
            (reason, false) => format!("{reason}; {}", refused.join("; ")),
        };
        Ok(Err(Rejected(reason)))
    }

    /// Verifies every bundle attached to `digest`: those that verified, and why each other did
    /// not (`bundle N: …`).
    fn verify_bundles(
        &self,
        attached: &Attached,
        digest: &Digest,
    ) -> Result<(Vec<Verified>, Vec<String>)> {
        let mut verified = Vec::new();
        let mut refused = Vec::new();
        for (i, json) in attached.bundles.iter().enumerate() {
            match self.bundles()?.verify(json, Subject::Image(digest)) {
                Ok(v) => verified.push(v),
                Err(reason) => refused.push(format!("bundle {}: {reason}", i + 1)),
            }
        }
        Ok((verified, refused))
    }

    /// With `attestations`: every policy needs a verified bundle whose statement meets it.
    async fn attested(
        &self,
        registry: &Registry,
        digest: &Digest,
    ) -> Result<Result<Accepted, Rejected>> {
        let attached = bundle::attached::attached(registry, digest).await?;
        let (verified, refused) = self.verify_bundles(&attached, digest)?;
        for (i, policy) in self.verify.attestations.iter().enumerate() {
            let mut why = Vec::new();
            let met = verified.iter().any(|v| {
                let Some(statement) = &v.statement else {
                    return false;
                };
                match attestation::check(policy, &statement.predicate_type, &statement.predicate) {
                    Ok(()) => true,
                    Err(reason) if statement.predicate_type == policy.predicate_type => {
                        why.push(format!("signed by {}: {reason}", v.signer));
                        false
                    }
                    Err(_) => false,
                }
            });
            if met {
                continue;
            }
            if why.is_empty() {
                why.push(format!(
                    "no verified attestation of that type ({} bundles verified{})",
                    verified.len(),
                    if attached.bundles.is_empty() {
                        format!("; {}", no_bundle(attached.found, digest))
                    } else if refused.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", refused.join("; "))
                    }
                ));
            }
            return Ok(Err(Rejected(format!(
                "source.verify.attestations[{i}] ({}): {}",
                policy.predicate_type,
                why.join("; ")
            ))));
        }
        Ok(Ok(Accepted {
            layout: layout(attached.found),
            requests: attached.requests,
        }))
    }

    /// The legacy `.sig` layout: whether it holds an acceptable signature, and the requests
    /// that took.
    async fn legacy(&self, registry: &Registry, digest: &Digest) -> Result<Legacy> {
        let tag = signature_tag(digest);
        let mut requests = 1;
        let Some(fetched) = registry.manifest(&tag).await? else {
            return Ok(Legacy::refused(requests, LegacyRefusal::NoTag(tag)));
        };
        let invalid = |message: String| Error::InvalidResponse {
            server: registry.name().host.clone(),
            what: format!("signature manifest {tag}"),
            message,
        };
        let Manifest::Image(image) = Manifest::parse(&fetched).map_err(invalid)? else {
            let why = format!("{tag} is an index, not a cosign signature image");
            return Ok(Legacy::refused(requests, LegacyRefusal::Other(why)));
        };
        let layers: Vec<_> = image
            .layers()
            .iter()
            .filter(|l| l.media_type().to_string() == SIMPLE_SIGNING)
            .collect();
        if layers.is_empty() {
            let why = format!("{tag} holds no cosign signature");
            return Ok(Legacy::refused(requests, LegacyRefusal::Other(why)));
        }
        let mut reasons = Vec::new();
        for (i, layer) in layers.iter().take(MAX_SIGNATURES).enumerate() {
            let blob_digest = manifest::digest_of(layer).map_err(invalid)?;
            let payload = registry.blob(&blob_digest).await?;
            requests += 1;
            let annotations = layer.annotations().clone().unwrap_or_default();
            match self.accepts(digest, &payload, &annotations) {
                Ok(()) => {
                    return Ok(Legacy {
                        requests,
                        outcome: Ok(()),
                    });
                }
                Err(reason) => reasons.push(format!("signature {}: {reason}", i + 1)),
            }
        }
        let why = LegacyRefusal::Other(reasons.join("; "));
        Ok(Legacy::refused(requests, why))
    }

    /// One signature layer: its payload must name `digest`, and a key or the keyless policy
    /// must vouch for it.
    fn accepts(
        &self,
        digest: &Digest,
        payload: &[u8],
        annotations: &std::collections::HashMap<String, String>,
    ) -> Result<(), String> {
        let signed = signed_digest(payload)?;
        if signed != digest.to_string() {
            return Err(format!("its payload signs {signed}, not this digest"));
        }
        let signature = annotations
            .get(SIGNATURE)
            .ok_or("the layer has no signature annotation")?;
        let signature = BASE64
            .decode(signature.trim())
            .map_err(|_| "the signature is not base64")?;
        if let Some(certificate) = annotations.get(CERTIFICATE) {
            let Some(policy) = &self.keyless else {
                return Err(
                    "a keyless (certificate) signature, and source.verify.keyless is not set"
                        .into(),
                );
            };
            return policy.accepts(
                payload,
                &signature,
                certificate,
                annotations.get(BUNDLE).map(String::as_str),
            );
        }
        if self.keys.is_empty() {
            return Err("a key signature, and source.verify.public_keys is empty".into());
        }
        if self.keys.iter().any(|k| k.verifies(payload, &signature)) {
            Ok(())
        } else {
            Err("not signed by any key in source.verify.public_keys".into())
        }
    }
}

/// What `in` and `out` call before acting on `digest`: nothing without `source.verify`, else a
/// signature it accepts or [`Error::Unverified`]. They verify again what `check` verified because
/// a version can reach them without `check` (`params.digest`, `fly check-resource --from`, a
/// signature deleted since).
pub async fn require(source: &Source, registry: &Registry, digest: &Digest) -> Result<()> {
    let Some(verify) = &source.verify else {
        return Ok(());
    };
    let reference = format!("{}@{digest}", source.repository);
    match Verifier::new(verify)?.verify(registry, digest).await? {
        Ok(Accepted { layout, requests }) => {
            eprintln!("signature verified: {reference} ({layout}, {requests} requests)");
            Ok(())
        }
        Err(Rejected(reason)) => Err(Error::Unverified { reference, reason }),
    }
}

/// What the legacy layout held for a digest.
struct Legacy {
    requests: usize,
    outcome: Result<(), LegacyRefusal>,
}

impl Legacy {
    fn refused(requests: usize, why: LegacyRefusal) -> Legacy {
        Legacy {
            requests,
            outcome: Err(why),
        }
    }
}

/// Why the legacy layout held no acceptable signature.
enum LegacyRefusal {
    /// There is no `.sig` tag (named here).
    NoTag(String),
    /// There is one, and this is what is wrong with it.
    Other(String),
}

impl std::fmt::Display for LegacyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegacyRefusal::NoTag(tag) => write!(f, "it has no cosign signature tag {tag}"),
            LegacyRefusal::Other(why) => f.write_str(why),
        }
    }
}

fn layout(found: Found) -> &'static str {
    match found {
        Found::Api => "Sigstore bundle (referrers API)",
        Found::TagSchema => "Sigstore bundle (referrers tag schema)",
    }
}

/// Why no bundle was read: where the referrers were looked for.
fn no_bundle(found: Found, digest: &Digest) -> String {
    match found {
        Found::Api => "no Sigstore bundle among its referrers".into(),
        Found::TagSchema => format!(
            "no Sigstore bundle among its referrers: no referrers API, nothing under the tag {}",
            tag_schema(digest)
        ),
    }
}

/// The tag cosign stores the signatures of `digest` under.
pub fn signature_tag(digest: &Digest) -> String {
    tag_schema(digest) + ".sig"
}

/// `critical.image.docker-manifest-digest` of a simple-signing payload, after checking it is one.
fn signed_digest(payload: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(Deserialize)]
    struct Critical {
        image: Image,
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        digest: String,
    }
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a cosign simple-signing document ({e})"))?;
    // The type is what makes this a claim about an image and not some other signed JSON.
    if !payload
        .critical
        .kind
        .eq_ignore_ascii_case("cosign container image signature")
    {
        return Err(format!(
            "the payload's type is `{}`, not a cosign container image signature",
            payload.critical.kind
        ));
    }
    Ok(payload.critical.image.digest)
}
