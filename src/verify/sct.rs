//! Fulcio's certificate-transparency receipts: the SCTs embedded in a keyless signature's
//! certificate (RFC 6962 §3.3), verified offline with the CT logs of the trusted root, as
//! cosign does unless told `--insecure-ignore-sct`.
//!
//! An SCT is a log's signed promise to publish the certificate. Requiring one means a
//! certificate the CA issued without logging it, where its owner could never see it, is refused.
//! Like cosign (sigstore-go's threshold of one), one SCT that verifies with a listed log, signed
//! within the period the trusted root gives that log's key, is enough; SCTs from logs the root
//! does not list are passed over.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

use super::der;
use super::key::PublicKey;
use super::trusted_root::Period;

/// A CT log of the trusted root (`ctlogs`).
#[derive(Debug)]
pub struct CtLog {
    /// The SHA-256 of the log's key (DER), which is how an SCT names its log.
    pub id: Vec<u8>,
    pub key: PublicKey,
    /// The period in which the trusted root says this key signed (`validFor`).
    pub period: Period,
}

/// RFC 6962's `SignatureAndHashAlgorithm` values this verifier accepts.
const ECDSA: u8 = 3;
const SHA256: u8 = 4;
const SHA384: u8 = 5;

/// One `SignedCertificateTimestamp` (RFC 6962 §3.2).
struct Sct<'a> {
    version: u8,
    log_id: &'a [u8],
    /// Milliseconds since the Unix epoch.
    timestamp: u64,
    extensions: &'a [u8],
    hash: u8,
    signature_algorithm: u8,
    signature: &'a [u8],
}

/// Whether an SCT embedded in `leaf` verifies with one of `logs` for the precertificate that
/// `issuer_spki` (the key of the CA that issued `leaf`) signed.
pub fn verify(leaf: &[u8], issuer_spki: &[u8], logs: &[CtLog]) -> Result<(), String> {
    const MISSING: &str =
        "its certificate has no embedded SCT (Fulcio's certificate-transparency receipt)";
    let precertificate = der::precertificate(leaf)
        .map_err(|e| format!("cannot read its certificate: {e}"))?
        .ok_or(MISSING)?;
    let scts = parse_list(precertificate.sct_list)
        .ok_or("its certificate's SCT list is not an RFC 6962 SignedCertificateTimestampList")?;
    if scts.is_empty() {
        return Err(MISSING.into());
    }
    let issuer_key_hash = Sha256::digest(issuer_spki);
    let mut reasons = Vec::new();
    for sct in &scts {
        match check(sct, &issuer_key_hash, &precertificate.tbs, logs) {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(format!(
        "its certificate's SCT {}",
        reasons.join("; its SCT ")
    ))
}

/// One SCT against the log it names.
fn check(sct: &Sct, issuer_key_hash: &[u8], tbs: &[u8], logs: &[CtLog]) -> Result<(), String> {
    if sct.version != 0 {
        return Err(format!("has version {}, not RFC 6962's v1", sct.version));
    }
    let log = logs.iter().find(|l| l.id == sct.log_id).ok_or_else(|| {
        format!(
            "is from a CT log the trusted root does not list (log id {})",
            BASE64.encode(sct.log_id)
        )
    })?;
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_millis(sct.timestamp);
    if !log.period.contains(signed_at) {
        return Err(format!(
            "is dated {}, outside the period the trusted root gives its CT log's key",
            humantime::format_rfc3339_millis(signed_at)
        ));
    }
    let expected_hash = match log.key.curve() {
        der::Curve::P256 => SHA256,
        der::Curve::P384 => SHA384,
    };
    if (sct.hash, sct.signature_algorithm) != (expected_hash, ECDSA) {
        return Err(format!(
            "is signed with hash {} and signature algorithm {} (RFC 5246 codes), which its CT log's key does not use",
            sct.hash, sct.signature_algorithm
        ));
    }
    if log
        .key
        .verifies(&signed_data(sct, issuer_key_hash, tbs), sct.signature)
    {
        Ok(())
    } else {
        Err("does not verify with its CT log's key".into())
    }
}

/// What the log signed: RFC 6962 §3.2's `digitally-signed struct` for a precertificate entry.
fn signed_data(sct: &Sct, issuer_key_hash: &[u8], tbs: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tbs.len() + 64);
    out.push(sct.version);
    out.push(0); // signature_type: certificate_timestamp
    out.extend_from_slice(&sct.timestamp.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type: precert_entry
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]); // opaque TBSCertificate<1..2^24-1>
    out.extend_from_slice(tbs);
    out.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    out.extend_from_slice(sct.extensions);
    out
}

/// The SCTs of a TLS-encoded `SignedCertificateTimestampList`; `None` if it is malformed.
fn parse_list(bytes: &[u8]) -> Option<Vec<Sct<'_>>> {
    let mut outer = Tls(bytes);
    let mut list = Tls(outer.vector(2)?);
    if !outer.0.is_empty() {
        return None;
    }
    let mut scts = Vec::new();
    while !list.0.is_empty() {
        let mut sct = Tls(list.vector(2)?);
        scts.push(Sct {
            version: sct.take(1)?[0],
            log_id: sct.take(32)?,
            timestamp: sct.number(8)?,
            extensions: sct.vector(2)?,
            hash: sct.take(1)?[0],
            signature_algorithm: sct.take(1)?[0],
            signature: sct.vector(2)?,
        });
        if !sct.0.is_empty() {
            return None;
        }
    }
    Some(scts)
}

/// Reads TLS presentation-language fields (RFC 5246 §4): big-endian numbers and vectors with
/// a length prefix.
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn number(&mut self, bytes: usize) -> Option<u64> {
        let bytes = self.take(bytes)?;
        Some(bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b)))
    }

    /// A vector whose length takes `length_bytes` bytes.
    fn vector(&mut self, length_bytes: usize) -> Option<&'a [u8]> {
        let length = usize::try_from(self.number(length_bytes)?).ok()?;
        self.take(length)
    }
}
