//! Sigstore bundles (`application/vnd.dev.sigstore.bundle…+json`, v0.1 to v0.3): what cosign v3
//! signs by default (v2.4+ with `--new-bundle-format`) and what GitHub's attestations are.
//!
//! A bundle is verified by `sigstore-verify`, the Sigstore project's own Rust verifier: message
//! signatures and DSSE envelopes, key-signed and keyless (Fulcio chain, SCT, identity and issuer),
//! Rekor v1 entries (signed entry timestamp, inclusion proof) and Rekor v2 entries (inclusion
//! proof against a checkpoint signed by a log of the trusted root), RFC 3161 timestamps of the
//! trusted root's authorities, and every validity period the trusted root gives. It agrees with all
//! 70 of the Sigstore conformance cases (`tests/conformance.rs`), which this project's own
//! verifier of the legacy layout was never held to; attacker-fed parsing (certificates, CMS
//! timestamps, checkpoints) is exactly what a maintained verifier is for (docs/design.md).
//! Nothing is fetched: the trusted root comes in as data.
//!
//! This module decides only what the crate leaves to its caller: which key or identity, what
//! the artifact is (an image's manifest digest: the DSSE statement must name it as a subject),
//! and what a verified statement says ([`Statement`], for `verify.attestations`).

pub mod attached;
pub mod crypto;

use serde::Deserialize;
use sigstore_trust_root::TrustedRoot;
use sigstore_types::bundle::VerificationMaterialContent;
use sigstore_types::{Artifact, Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::key::PublicKey;
use crate::config::Digest;

/// The in-toto payload type of a DSSE envelope.
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// Who may have signed a bundle, and the trusted root its log entries and timestamps are
/// checked against.
pub struct BundlePolicy {
    verifier: Verifier,
    /// Whether a trusted root was given: without one, a key-signed bundle's log entries cannot
    /// be checked (a key-signed bundle needs none: cosign `--tlog-upload=false`).
    rooted: bool,
    /// `source.verify.public_keys`, by position: for the crate, and for ring.
    keys: Vec<(DerPublicKey, PublicKey)>,
    /// `source.verify.keyless`: identity and issuer, exactly.
    keyless: Option<(String, String)>,
}

impl std::fmt::Debug for BundlePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundlePolicy")
            .field("rooted", &self.rooted)
            .field("keys", &self.keys.len())
            .field("keyless", &self.keyless)
            .finish()
    }
}

/// What a bundle signs.
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// An image, by its manifest digest: a DSSE statement must name it as a subject.
    Image(&'a Digest),
    /// A blob's bytes (the conformance cases).
    Blob(&'a [u8]),
}

/// A bundle that verified: who signed it, and the in-toto statement when it is a DSSE envelope.
#[derive(Debug)]
pub struct Verified {
    pub signer: String,
    pub statement: Option<Statement>,
}

/// An in-toto statement (v0.1 or v1), as far as a policy reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub predicate_type: String,
    #[serde(default)]
    pub subject: Vec<StatementSubject>,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

/// One `subject` of a statement: what it is about, by digest.
#[derive(Debug, Deserialize)]
pub struct StatementSubject {
    #[serde(default)]
    pub digest: std::collections::BTreeMap<String, String>,
}

impl BundlePolicy {
    /// `keys` (DER `SubjectPublicKeyInfo`s), `keyless` identity and issuer, and the text of a
    /// trusted root (required for keyless).
    pub fn new(
        keys: Vec<Vec<u8>>,
        keyless: Option<(String, String)>,
        trusted_root: Option<&str>,
    ) -> Result<BundlePolicy, String> {
        crypto::install();
        let root = match trusted_root {
            Some(text) => TrustedRoot::from_json(text)
                .map_err(|e| format!("not a Sigstore trusted_root.json ({e})"))?,
            None => TrustedRoot::from_json(
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
            )
            .expect("an empty trusted root parses"),
        };
        let verifier = Verifier::new(&root).map_err(|e| format!("unusable trusted root ({e})"))?;
        Ok(BundlePolicy {
            verifier,
            rooted: trusted_root.is_some(),
            keys: keys
                .into_iter()
                .map(|der| Ok((PublicKey::from_spki(&der)?, der)))
                .map(|key: Result<_, String>| key.map(|(ring, der)| (DerPublicKey::new(der), ring)))
                .collect::<Result<_, _>>()?,
            keyless,
        })
    }

    /// Verifies one bundle (its JSON) for `subject`; the error says why it is not acceptable.
    pub fn verify(&self, json: &str, subject: Subject) -> Result<Verified, String> {
        let bundle = Bundle::from_json(json).map_err(|e| format!("not a Sigstore bundle ({e})"))?;
        let artifact: Artifact = match subject {
            Subject::Blob(bytes) => bytes.into(),
            Subject::Image(image) => {
                if !matches!(bundle.content, SignatureContent::DsseEnvelope(_)) {
                    return Err(
                        "a message signature over something else than the image (an image's bundle is a DSSE envelope naming its digest)"
                            .into(),
                    );
                }
                let hex = image.to_string();
                let digest = Sha256Hash::from_hex(hex.trim_start_matches("sha256:"))
                    .map_err(|e| e.to_string())?;
                Artifact::from_digest(digest)
            }
        };
        let signer = match &bundle.verification_material.content {
            VerificationMaterialContent::PublicKey(_) => self.by_key(artifact, &bundle)?,
            _ => self.keyless(artifact, &bundle)?,
        };
        let statement = match &bundle.content {
            SignatureContent::DsseEnvelope(envelope) if envelope.payload_type == IN_TOTO => Some(
                serde_json::from_slice(envelope.payload.as_bytes())
                    .map_err(|e| format!("its in-toto statement cannot be read ({e})"))?,
            ),
            _ => None,
        };
        Ok(Verified { signer, statement })
    }

    fn by_key(&self, artifact: Artifact, bundle: &Bundle) -> Result<String, String> {
        if self.keys.is_empty() {
            return Err("signed with a key, and source.verify.public_keys is empty".into());
        }
        let material = &bundle.verification_material;
        if material.tlog_entries.is_empty()
            && material
                .timestamp_verification_data
                .rfc3161_timestamps
                .is_empty()
        {
            return self.unlogged(artifact, bundle);
        }
        let mut last = String::new();
        for (i, (key, _)) in self.keys.iter().enumerate() {
            let mut policy = PublicKeyVerificationPolicy::new(key.clone());
            // Without a trusted root there is no log key to check an entry with; the key alone
            // vouches, as for a key-signed signature of the legacy layout.
            if !self.rooted {
                policy = policy.skip_tlog_unsafe();
            }
            match self.verifier.verify(artifact.clone(), bundle, &policy) {
                Ok(_) => return Ok(format!("source.verify.public_keys[{i}]")),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "not signed by any key in source.verify.public_keys (last: {last})"
        ))
    }

    /// A key-signed DSSE bundle with neither a log entry nor a timestamp (cosign
    /// `--tlog-upload=false`): `sigstore-verify` refuses these by design, as it will not take a
    /// signing time from nowhere; a key needs none. As for a key signature of the legacy layout,
    /// the envelope's signature (over its pre-authentication encoding, the crate's) must verify
    /// with a listed key, and its statement must name the image.
    fn unlogged(&self, artifact: Artifact, bundle: &Bundle) -> Result<String, String> {
        let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
            return Err(
                "a key-signed message signature with neither a log entry nor a timestamp".into(),
            );
        };
        let pae = envelope.pae();
        let signer = self
            .keys
            .iter()
            .position(|(_, key)| key.verifies(&pae, envelope.signature.sig.as_bytes()))
            .ok_or("not signed by any key in source.verify.public_keys (its envelope's signature does not verify)")?;
        let statement: Statement = serde_json::from_slice(envelope.payload.as_bytes())
            .map_err(|e| format!("its in-toto statement cannot be read ({e})"))?;
        let wanted = match &artifact {
            Artifact::Digest(digest) => hex::encode(digest.as_bytes()),
            _ => return Err("only an image's bundle may go without a log entry".into()),
        };
        if !statement
            .subject
            .iter()
            .any(|s| s.digest.get("sha256") == Some(&wanted))
        {
            return Err(format!(
                "not about this digest: its statement's subjects are sha256:{}",
                statement
                    .subject
                    .iter()
                    .filter_map(|s| s.digest.get("sha256"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", sha256:")
            ));
        }
        Ok(format!("source.verify.public_keys[{signer}]"))
    }

    fn keyless(&self, artifact: Artifact, bundle: &Bundle) -> Result<String, String> {
        let Some((identity, issuer)) = &self.keyless else {
            return Err(
                "a keyless (certificate) signature, and source.verify.keyless is not set".into(),
            );
        };
        let policy = VerificationPolicy::new(identity.as_str(), issuer.as_str());
        self.verifier
            .verify(artifact, bundle, &policy)
            .map(|_| format!("`{identity}` (issuer `{issuer}`)"))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    //! The recorded keyless v0.3 bundle with a Rekor v2 entry and a timestamp
    //! (tests/fixtures/rekor2, provenance in its README).
    use super::*;

    const BUNDLE: &str = include_str!("../../../tests/fixtures/rekor2/bundle.sigstore.json");
    const ROOT: &str = include_str!("../../../tests/fixtures/rekor2/trusted_root.json");
    const ARTIFACT: &[u8] = include_bytes!("../../../tests/fixtures/rekor2/artifact");
    const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";

    fn policy(identity: &str) -> BundlePolicy {
        BundlePolicy::new(
            Vec::new(),
            Some((identity.into(), ISSUER.into())),
            Some(ROOT),
        )
        .unwrap()
    }

    #[test]
    fn a_rekor_v2_entry_with_a_timestamp_verifies_for_its_identity_only() {
        let verified = policy(IDENTITY)
            .verify(BUNDLE, Subject::Blob(ARTIFACT))
            .unwrap();
        assert_eq!(verified.signer, format!("`{IDENTITY}` (issuer `{ISSUER}`)"));
        assert!(verified.statement.is_none(), "a message signature");

        let other = "https://github.com/o/app/.github/workflows/release.yml@refs/heads/main";
        let err = policy(other)
            .verify(BUNDLE, Subject::Blob(ARTIFACT))
            .unwrap_err();
        assert!(err.contains(IDENTITY) || err.contains("identity"), "{err}");

        let mut changed = ARTIFACT.to_vec();
        changed[0] ^= 1;
        assert!(
            policy(IDENTITY)
                .verify(BUNDLE, Subject::Blob(&changed))
                .is_err()
        );
        // Without the timestamp there is no signing time, and no verification.
        let mut bundle: serde_json::Value = serde_json::from_str(BUNDLE).unwrap();
        bundle["verificationMaterial"]
            .as_object_mut()
            .unwrap()
            .remove("timestampVerificationData");
        let err = policy(IDENTITY)
            .verify(&bundle.to_string(), Subject::Blob(ARTIFACT))
            .unwrap_err();
        assert!(err.contains("timestamp"), "{err}");
    }

    #[test]
    fn an_image_needs_a_statement_not_a_message_signature() {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let err = policy(IDENTITY)
            .verify(BUNDLE, Subject::Image(&digest))
            .unwrap_err();
        assert!(
            err.contains("a message signature over something else"),
            "{err}"
        );
    }
}
