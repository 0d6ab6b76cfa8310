//! Keyless (Sigstore "public good" or private Fulcio/Rekor) signatures, verified offline.
//!
//! A keyless signature is made with a short-lived key whose Fulcio certificate names the signer
//! (subject alternative name) and the OIDC issuer that vouched for it. The certificate is valid
//! for ten minutes, so the proof that the signature was made while it was valid is the Rekor
//! bundle: the log's signed entry timestamp (SET) over the entry and its `integratedTime`. What is
//! checked, in order:
//!
//! 1. the signature verifies with the certificate's key;
//! 2. the bundle's SET verifies with a Rekor key of the trusted root (chosen by its log id),
//!    and the logged time is within the period the root gives that key;
//! 3. the logged entry (`hashedrekord`) is this signature, this certificate and this payload;
//! 4. the certificate chains to a Fulcio CA of the trusted root, for code signing, at the
//!    logged time, through a CA the root says was valid then;
//! 5. an SCT embedded in the certificate verifies with a CT log of the trusted root ([`sct`]),
//!    so Fulcio logged the certificate where its owner can see it;
//! 6. its identity and issuer are exactly the configured ones.
//!
//! Every period (`validFor`) the trusted root gives a CA or a log key is held against the logged
//! time (the SCT's own time for CT logs): when Sigstore rotates a key or a CA, a signature dated
//! outside the period of the one that vouches for it is refused, as sigstore-go does.
//!
//! Not checked: Rekor inclusion proofs, which need a checkpoint (the SET is Rekor's signed
//! promise of inclusion, which is what cosign itself checks offline).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::der;
use super::key::PublicKey;
use super::sct::{self, CtLog};
use super::trusted_root::{Period, TrustedRoot};
use crate::config::Keyless;
use crate::error::{Error, Result};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), the usage Fulcio issues for.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// `source.verify.keyless` with its trusted root decoded.
#[derive(Debug)]
pub struct KeylessPolicy {
    identity: String,
    issuer: String,
    /// Each CA's period and chain, DER, leaf-most first; the last one is the trust anchor.
    authorities: Vec<(Period, Vec<Vec<u8>>)>,
    /// Rekor logs: key id (SHA-256 of the key's DER), key and the key's period.
    logs: Vec<(Vec<u8>, PublicKey, Period)>,
    ct_logs: Vec<CtLog>,
}

/// cosign's `dev.sigstore.cosign/bundle` annotation.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundle {
    signed_entry_timestamp: String,
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// The `hashedrekord` v0.0.1 entry Rekor logged.
#[derive(Deserialize)]
struct Entry {
    kind: String,
    spec: EntrySpec,
}

#[derive(Deserialize)]
struct EntrySpec {
    data: EntryData,
    signature: EntrySignature,
}

#[derive(Deserialize)]
struct EntryData {
    hash: EntryHash,
}

#[derive(Deserialize)]
struct EntryHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntrySignature {
    content: String,
    public_key: EntryKey,
}

#[derive(Deserialize)]
struct EntryKey {
    content: String,
}

impl KeylessPolicy {
    pub fn new(config: &Keyless) -> Result<KeylessPolicy> {
        let bad = |message: String| Error::Config {
            key: "source.verify.keyless.trusted_root",
            message,
        };
        let root: TrustedRoot = serde_json::from_str(&config.trusted_root).map_err(|e| {
            bad(format!(
                "not a Sigstore trusted_root.json ({e}); give the file's contents"
            ))
        })?;
        let decode = |b64: &str| {
            BASE64
                .decode(b64)
                .map_err(|_| bad("a rawBytes/keyId value is not base64".into()))
        };
        let mut authorities = Vec::new();
        for ca in &root.certificate_authorities {
            let chain = (ca.cert_chain.certificates.iter())
                .map(|c| decode(&c.raw_bytes))
                .collect::<Result<Vec<_>>>()?;
            if !chain.is_empty() {
                let period = Period::parse(ca.valid_for.as_ref(), "certificateAuthorities");
                authorities.push((period.map_err(bad)?, chain));
            }
        }
        // Keys of other kinds (Rekor v2's Ed25519) cannot have signed a cosign bundle's SET.
        let mut logs = Vec::new();
        for log in &root.tlogs {
            if let Ok(key) = PublicKey::from_spki(&decode(&log.public_key.raw_bytes)?) {
                let period = Period::parse(log.public_key.valid_for.as_ref(), "tlogs");
                logs.push((decode(&log.log_id.key_id)?, key, period.map_err(bad)?));
            }
        }
        let mut ct_logs = Vec::new();
        for log in &root.ctlogs {
            if let Ok(key) = PublicKey::from_spki(&decode(&log.public_key.raw_bytes)?) {
                let period = Period::parse(log.public_key.valid_for.as_ref(), "ctlogs");
                ct_logs.push(CtLog {
                    id: decode(&log.log_id.key_id)?,
                    key,
                    period: period.map_err(bad)?,
                });
            }
        }
        let missing: Vec<&str> = [
            (authorities.is_empty(), "no certificate authority"),
            (logs.is_empty(), "no ECDSA transparency log (tlogs)"),
            (ct_logs.is_empty(), "no ECDSA CT log (ctlogs)"),
        ]
        .into_iter()
        .filter_map(|(empty, what)| empty.then_some(what))
        .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "it has {}; keyless verification needs all three: give Sigstore's trusted_root.json whole",
                missing.join(", ")
            )));
        }
        for (key, value) in [("identity", &config.identity), ("issuer", &config.issuer)] {
            if value.trim().is_empty() {
                return Err(Error::Config {
                    key: if key == "identity" {
                        "source.verify.keyless.identity"
                    } else {
                        "source.verify.keyless.issuer"
                    },
                    message: "must not be empty".into(),
                });
            }
        }
        Ok(KeylessPolicy {
            identity: config.identity.clone(),
            issuer: config.issuer.clone(),
            authorities,
            logs,
            ct_logs,
        })
    }

    /// Whether one keyless signature layer is acceptable (see the module comment for the steps).
    pub fn accepts(
        &self,
        payload: &[u8],
        signature: &[u8],
        certificate_pem: &str,
        bundle: Option<&str>,
    ) -> Result<(), String> {
        let leaf = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|_| "its certificate annotation is not a PEM certificate")?;
        let fields =
            der::certificate(&leaf).map_err(|e| format!("cannot read its certificate: {e}"))?;
        let key =
            PublicKey::from_spki(fields.spki).map_err(|e| format!("its certificate's key: {e}"))?;
        if !key.verifies(payload, signature) {
            return Err("the signature does not verify with its certificate's key".into());
        }
        let bundle = bundle.ok_or(
            "it has no Rekor bundle, so nothing proves it was made while its certificate was valid",
        )?;
        let logged_at = self.check_bundle(bundle, payload, signature, &leaf)?;
        let issuer_spki = self.check_chain(&leaf, logged_at)?;
        sct::verify(&leaf, &issuer_spki, &self.ct_logs)?;

        let issuer = fields.issuer.as_deref().unwrap_or("(none)");
        if fields.identities.contains(&self.identity) && issuer == self.issuer {
            Ok(())
        } else {
            Err(format!(
                "signed by `{}` (issuer `{issuer}`), not by source.verify.keyless's `{}` (issuer `{}`)",
                fields.identities.join(", "),
                self.identity,
                self.issuer
            ))
        }
    }

    /// Verifies the SET and that the logged entry is this signature; returns the logged time.
    fn check_bundle(
        &self,
        bundle: &str,
        payload: &[u8],
        signature: &[u8],
        leaf: &[u8],
    ) -> Result<u64, String> {
        let bundle: RekorBundle =
            serde_json::from_str(bundle).map_err(|e| format!("its Rekor bundle: {e}"))?;
        let p = &bundle.payload;
        let log_id = hex::decode(&p.log_id).map_err(|_| "its Rekor bundle's logID is not hex")?;
        let (_, log_key, period) = self
            .logs
            .iter()
            .find(|(id, ..)| *id == log_id)
            .ok_or("its Rekor bundle is from a log the trusted root does not list")?;
        let seconds = u64::try_from(p.integrated_time).map_err(|_| "its Rekor time is negative")?;
        let logged_at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        if !period.contains(logged_at) {
            return Err(format!(
                "its Rekor entry is dated {}, outside the period the trusted root gives that log's key",
                humantime::format_rfc3339(logged_at)
            ));
        }
        // The SET signs the canonical JSON (RFC 8785: sorted keys, no spaces) of the payload.
        let canonical = format!(
            "{{\"body\":{},\"integratedTime\":{},\"logID\":{},\"logIndex\":{}}}",
            serde_json::Value::from(p.body.as_str()),
            p.integrated_time,
            serde_json::Value::from(p.log_id.as_str()),
            p.log_index
        );
        let set = BASE64
            .decode(&bundle.signed_entry_timestamp)
            .map_err(|_| "its Rekor bundle's SET is not base64")?;
        if !log_key.verifies(canonical.as_bytes(), &set) {
            return Err("its Rekor bundle's signed entry timestamp does not verify".into());
        }

        let body = BASE64
            .decode(&p.body)
            .map_err(|_| "its Rekor entry is not base64")?;
        let entry: Entry = serde_json::from_slice(&body)
            .map_err(|e| format!("its Rekor entry is not a hashedrekord ({e})"))?;
        let logged_key = BASE64
            .decode(&entry.spec.signature.public_key.content)
            .ok()
            .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok());
        let matches = entry.kind == "hashedrekord"
            && entry.spec.data.hash.algorithm == "sha256"
            && entry.spec.data.hash.value == hex::encode(Sha256::digest(payload))
            && BASE64.decode(&entry.spec.signature.content).ok().as_deref() == Some(signature)
            && logged_key.as_deref() == Some(leaf);
        if !matches {
            return Err(
                "its Rekor entry is about another signature, payload or certificate".into(),
            );
        }
        Ok(seconds)
    }

    /// The certificate chains to a trusted Fulcio CA, for code signing, at `logged_at`; returns
    /// the `SubjectPublicKeyInfo` of the CA that issued it (the SCTs are over its hash).
    ///
    /// The chain is built from the trusted root alone, as cosign builds it: the signature's own
    /// `dev.sigstore.cosign/chain` annotation is never read, since a CA the trusted root does not
    /// list is not trusted, whoever signed it.
    fn check_chain(&self, leaf: &[u8], logged_at: u64) -> Result<Vec<u8>, String> {
        let mut intermediates: Vec<CertificateDer<'_>> = Vec::new();
        let mut anchors = Vec::new();
        // Only the CAs the root says were in use at the logged time may vouch for the certificate.
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(logged_at);
        let authorities: Vec<&Vec<Vec<u8>>> = (self.authorities.iter())
            .filter(|(period, _)| period.contains(when))
            .map(|(_, chain)| chain)
            .collect();
        if authorities.is_empty() {
            return Err(format!(
                "no certificate authority of the trusted root was in use at the logged time, {}",
                humantime::format_rfc3339(when)
            ));
        }
        let roots: Vec<CertificateDer<'_>> = (authorities.iter())
            .filter_map(|chain| chain.last())
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        for root in &roots {
            if let Ok(anchor) = webpki::anchor_from_trusted_cert(root) {
                anchors.push(anchor);
            }
        }
        for chain in &authorities {
            let below_root = &chain[..chain.len() - 1];
            intermediates.extend(
                below_root
                    .iter()
                    .map(|d| CertificateDer::from(d.as_slice())),
            );
        }
        let leaf = CertificateDer::from(leaf);
        let end_entity = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| format!("its certificate cannot be parsed ({e:?})"))?;
        let algorithms = [
            webpki::ring::ECDSA_P256_SHA256,
            webpki::ring::ECDSA_P256_SHA384,
            webpki::ring::ECDSA_P384_SHA256,
            webpki::ring::ECDSA_P384_SHA384,
        ];
        end_entity
            .verify_for_usage(
                &algorithms,
                &anchors,
                &intermediates,
                UnixTime::since_unix_epoch(Duration::from_secs(logged_at)),
                webpki::KeyUsage::required(CODE_SIGNING),
                None,
                None,
            )
            .map(|path| path.issuer_spki().as_ref().to_vec())
            .map_err(|e| {
                format!(
                    "its certificate does not chain to a certificate authority of the trusted root at the logged time ({e:?})"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    //! The recorded real keyless signature (tests/fixtures/keyless, provenance in its README),
    //! and single-field tamperings of it, each of which must be refused for its own reason.
    use super::*;

    const MANIFEST: &str = include_str!("../../tests/fixtures/keyless/signature-manifest.json");
    const PAYLOAD: &[u8] = include_bytes!("../../tests/fixtures/keyless/payload.json");
    const ROOT: &str = include_str!("../../tests/fixtures/keyless/trusted_root.json");
    const IDENTITY: &str = "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";

    struct Recorded {
        signature: Vec<u8>,
        certificate: String,
        chain: String,
        bundle: String,
    }

    fn recorded() -> Recorded {
        let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        let a = &manifest["layers"][0]["annotations"];
        let text = |key: &str| a[key].as_str().unwrap().to_string();
        Recorded {
            signature: BASE64
                .decode(text("dev.cosignproject.cosign/signature"))
                .unwrap(),
            certificate: text("dev.sigstore.cosign/certificate"),
            chain: text("dev.sigstore.cosign/chain"),
            bundle: text("dev.sigstore.cosign/bundle"),
        }
    }

    fn policy(root: &str) -> KeylessPolicy {
        policy_result(root).unwrap()
    }

    /// The policy for the recorded identity and issuer with `root` as the trusted root.
    fn policy_result(root: &str) -> Result<KeylessPolicy> {
        KeylessPolicy::new(&Keyless {
            identity: IDENTITY.into(),
            issuer: ISSUER.into(),
            trusted_root: root.into(),
        })
    }

    fn accepts(policy: &KeylessPolicy, r: &Recorded, payload: &[u8]) -> Result<(), String> {
        policy.accepts(payload, &r.signature, &r.certificate, Some(&r.bundle))
    }

    #[test]
    fn the_recorded_signature_verifies() {
        assert_eq!(accepts(&policy(ROOT), &recorded(), PAYLOAD), Ok(()));
    }

    /// The signature's own `dev.sigstore.cosign/chain` annotation carries the intermediate CA;
    /// a trusted root that lists only the Fulcio root does not vouch for it, so the signature is
    /// refused (as cosign refuses it), whoever signed the intermediate.
    #[test]
    fn an_intermediate_only_the_signature_carries_is_refused() {
        let r = recorded();
        assert!(
            r.chain.contains("BEGIN CERTIFICATE"),
            "the fixture has a chain"
        );
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        for ca in root["certificateAuthorities"].as_array_mut().unwrap() {
            let certificates = ca["certChain"]["certificates"].as_array_mut().unwrap();
            let anchor = certificates.pop().unwrap();
            *certificates = vec![anchor];
        }
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert!(
            err.contains("does not chain to a certificate authority of the trusted root"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_payload_fails_the_signature() {
        let mut payload = PAYLOAD.to_vec();
        payload[100] ^= 1;
        let err = accepts(&policy(ROOT), &recorded(), &payload).unwrap_err();
        assert!(
            err.contains("does not verify with its certificate's key"),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_bundle_fails_the_signed_entry_timestamp() {
        let mut r = recorded();
        r.bundle = r.bundle.replace("1772216446", "1772216447");
        let err = accepts(&policy(ROOT), &r, PAYLOAD).unwrap_err();
        assert!(
            err.contains("signed entry timestamp does not verify"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_bundle_is_refused() {
        let r = recorded();
        let err = policy(ROOT)
            .accepts(PAYLOAD, &r.signature, &r.certificate, None)
            .unwrap_err();
        assert!(err.contains("no Rekor bundle"), "{err}");
    }

    #[test]
    fn a_root_without_that_log_or_ca_is_refused() {
        let r = recorded();
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        let key_id = root["tlogs"][0]["logId"]["keyId"].clone();
        root["tlogs"][0]["logId"]["keyId"] = BASE64.encode([0u8; 32]).into();
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert!(
            err.contains("from a log the trusted root does not list"),
            "{err}"
        );

        // A CA that did not issue the certificate: this one's own leaf certificate as the "root".
        root["tlogs"][0]["logId"]["keyId"] = key_id;
        let leaf = CertificateDer::from_pem_slice(r.certificate.as_bytes()).unwrap();
        root["certificateAuthorities"][0]["certChain"]["certificates"] =
            json_certs(&[leaf.as_ref()]);
        let err = policy(&root.to_string())
            .accepts(PAYLOAD, &r.signature, &r.certificate, Some(&r.bundle))
            .unwrap_err();
        assert!(
            err.contains("does not chain to a certificate authority"),
            "{err}"
        );
    }

    /// A key or CA rotated out (its `validFor` ended) before the signature was logged no longer
    /// vouches for it; the same root with the period still open accepts it.
    #[test]
    fn a_log_key_or_ca_outside_its_period_is_refused() {
        let r = recorded();
        // The recorded entry was logged at 2026-02-27T18:20:46Z.
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2026-01-01T00:00:00Z".into();
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert_eq!(
            err,
            "its Rekor entry is dated 2026-02-27T18:20:46Z, outside the period the trusted root gives that log's key"
        );
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2026-03-01T00:00:00Z".into();
        accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap();

        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        root["certificateAuthorities"][0]["validFor"]["start"] = "2026-03-01T00:00:00Z".into();
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert_eq!(
            err,
            "no certificate authority of the trusted root was in use at the logged time, 2026-02-27T18:20:46Z"
        );

        root["certificateAuthorities"][0]["validFor"]["start"] = "yesterday".into();
        let err = policy_result(&root.to_string()).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "source.verify.keyless.trusted_root: a certificateAuthorities validFor time:"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_root_without_the_sct_log_is_refused() {
        let r = recorded();
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        // The recorded certificate's SCT is from Sigstore's 2022 CT log.
        root["ctlogs"][0]["logId"]["keyId"] = BASE64.encode([0u8; 32]).into();
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert_eq!(
            err,
            "its certificate's SCT is from a CT log the trusted root does not list (log id 3T0wasbHETJjGR4cmWc3AqJKXrjePK3/h4pygC8p7o4=)"
        );

        // The log's key, but the root says it stopped signing before the certificate was made.
        let mut root: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        root["ctlogs"][0]["publicKey"]["validFor"]["end"] = "2025-01-01T00:00:00Z".into();
        let err = accepts(&policy(&root.to_string()), &r, PAYLOAD).unwrap_err();
        assert_eq!(
            err,
            "its certificate's SCT is dated 2026-02-27T18:20:46.042Z, outside the period the trusted root gives its CT log's key"
        );

        // No CT log at all: refused before any signature is looked at.
        root["ctlogs"] = serde_json::json!([]);
        let err = policy_result(&root.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source.verify.keyless.trusted_root: it has no ECDSA CT log (ctlogs); keyless verification needs all three: give Sigstore's trusted_root.json whole"
        );
    }

    /// The Fulcio intermediate that issued the recorded certificate, whose key the SCT covers.
    fn issuer_spki() -> Vec<u8> {
        let chain = recorded().chain;
        let intermediate = CertificateDer::pem_slice_iter(chain.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        der::certificate(&intermediate).unwrap().spki.to_vec()
    }

    // The two tests below call the SCT check directly: changing the certificate breaks its
    // Fulcio signature and its Rekor entry, which `accepts` checks first.

    #[test]
    fn a_tampered_sct_signature_is_refused() {
        let leaf = CertificateDer::from_pem_slice(recorded().certificate.as_bytes()).unwrap();
        let logs = policy(ROOT).ct_logs;
        assert_eq!(sct::verify(&leaf, &issuer_spki(), &logs), Ok(()));

        // The first bytes of the SCT's ECDSA signature's r (openssl x509 -text shows them).
        let r = [0x6a, 0xdd, 0xc5, 0x38, 0x22, 0x06, 0xcf, 0x56];
        let at = leaf.windows(r.len()).position(|w| w == r).unwrap();
        let mut tampered = leaf.to_vec();
        tampered[at + 4] ^= 1;
        assert_eq!(
            sct::verify(&tampered, &issuer_spki(), &logs),
            Err("its certificate's SCT does not verify with its CT log's key".into())
        );
        // Or a precertificate issued by another CA (its key is in what the log signed).
        let other = der::certificate(&leaf).unwrap().spki.to_vec();
        assert_eq!(
            sct::verify(&leaf, &other, &logs),
            Err("its certificate's SCT does not verify with its CT log's key".into())
        );
    }

    #[test]
    fn a_certificate_without_an_sct_is_refused() {
        use rcgen::PublicKeyData as _;
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(ca, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["signer.example".into()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        assert_eq!(
            sct::verify(
                leaf.der(),
                &ca_key.subject_public_key_info(),
                &policy(ROOT).ct_logs
            ),
            Err(
                "its certificate has no embedded SCT (Fulcio's certificate-transparency receipt)"
                    .into()
            )
        );
    }

    fn json_certs(ders: &[&[u8]]) -> serde_json::Value {
        ders.iter()
            .map(|d| serde_json::json!({"rawBytes": BASE64.encode(d)}))
            .collect()
    }
}
