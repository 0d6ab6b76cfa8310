//! TLS for the registry client, paid for only when a connection needs it.
//!
//! With `source.insecure` nothing is verified, so no roots are loaded at all (the registry is
//! plain http; a token realm on https is not verified). Otherwise `source.ca_certs` are tried
//! first, and the system's CA bundle (`SSL_CERT_FILE`, else the usual paths) is read only when a
//! server's certificate does not chain to them: a registry with its own CA never costs the
//! bundle, a public one reads it once per process. Trusting both is the same as one merged store
//! (a chain is valid when it ends at any anchor), minus the bundle's cost when it is not needed.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A client configuration trusting `extra` (already checked PEM certificates) and, when needed,
/// the system's roots. HTTP/1.1 only: one connection serves every request of a step.
pub fn client_config(extra: &[CertificateDer<'static>]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra = (!extra.is_empty()).then(|| {
        let mut roots = RootCertStore::empty();
        // Each was parsed as a trust anchor when the config was read.
        roots.add_parsable_certificates(extra.iter().cloned());
        verifier(roots, &provider)
    });
    let verifier = Roots {
        algorithms: provider.signature_verification_algorithms,
        extra,
        system: OnceLock::new(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[derive(Debug)]
struct Roots {
    provider: Arc<CryptoProvider>,
    algorithms: WebPkiSupportedAlgorithms,
    extra: Option<Arc<WebPkiServerVerifier>>,
    system: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

fn verifier(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Arc<WebPkiServerVerifier> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("a non-empty root store")
}

/// The system's roots, as rustls-native-certs finds them (`SSL_CERT_FILE` in the image).
fn system_verifier(
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err(rustls::Error::General(
            "no system CA certificates found (set SSL_CERT_FILE, or give the CA in source.ca_certs)"
                .into(),
        ));
    }
    Ok(verifier(roots, provider))
}

impl ServerCertVerifier for Roots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verify = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        let first = match &self.extra {
            Some(extra) => match verify(extra) {
                Ok(verified) => return Ok(verified),
                Err(e) => Some(e),
            },
            None => None,
        };
        let system = self
            .system
            .get_or_init(|| system_verifier(&self.provider))
            .clone();
        match (system.and_then(|system| verify(&system)), first) {
            (Ok(verified), _) => Ok(verified),
            // The extra roots' complaint is the relevant one unless they simply did not know the
            // issuer (then it is the system's, e.g. an expired certificate from a public CA).
            (Err(_), Some(first))
                if first != rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) =>
            {
                Err(first)
            }
            (Err(e), _) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
