//! Certificates pasted into the config as PEM text (`source.ca_certs`,
//! `source.certificate_authority`, a kubeconfig's certificate data), checked when the config is
//! read: a wrong paste fails the step at once, naming the key, instead of surfacing later as an
//! unrelated connection or TLS error.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject, SectionKind};

/// The certificates in `text`: at least one, each a well-formed X.509 certificate, and no other
/// kind of PEM block. Messages never quote the input, which may be a private key.
pub fn certificates(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text) {
        let (kind, der) = section.map_err(|e| format!("is not valid PEM: {}", describe(&e)))?;
        match kind {
            SectionKind::Certificate => {
                let der = CertificateDer::from(der);
                // Parsing it as a trust anchor is the check rustls itself makes of a root.
                rustls::RootCertStore::empty()
                    .add(der.clone())
                    .map_err(|e| {
                        format!("holds a CERTIFICATE block that is not an X.509 certificate ({e})")
                    })?;
                certificates.push(der);
            }
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                return Err(
                    "holds a private key, not a certificate; give the CA's certificate \
                     (-----BEGIN CERTIFICATE-----) and replace the key if this value was shared"
                        .into(),
                );
            }
            other => return Err(format!("holds a {other:?} block, not a certificate")),
        }
    }
    if certificates.is_empty() {
        return Err("is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)".into());
    }
    Ok(certificates)
}

fn describe(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a block's body is not base64",
        _ => "unreadable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_keys_and_broken_blocks_are_refused() {
        let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n";
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let unterminated = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n";
        for (text, expected) in [
            ("not a pem", "no -----BEGIN CERTIFICATE----- block"),
            ("", "no -----BEGIN CERTIFICATE----- block"),
            (key, "private key"),
            (not_der, "not an X.509 certificate"),
            (unterminated, "no END line"),
        ] {
            let message = certificates(text.as_bytes()).unwrap_err();
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(!message.contains("MC4CAQ"), "the key leaked: {message}");
        }
    }
}
