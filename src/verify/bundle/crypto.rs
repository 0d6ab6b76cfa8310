//! ring as the cryptography of `sigstore-verify`.
//!
//! `sigstore-verify` hashes and checks signatures through a `sigstore_crypto::CryptoProvider`.
//! Its default one is aws-lc-rs, which would link a second crypto library (~0.8 MB more) beside
//! ring, which rustls and the legacy `.sig` verification already use. This provider maps each of
//! its signing schemes to ring's algorithm of the same name; the parsing of certificates,
//! timestamps, checkpoints and log entries stays the crate's.
//!
//! A message signature is checked over the digest the verifier computed ("prehashed"), which
//! ring cannot do; RustCrypto's `p256`/`p384`, already linked for ssh host keys, do it for ECDSA,
//! the only kind Sigstore's signers make. Other prehashed schemes are refused.

use ring::digest::{self, Context, SHA256, SHA384, SHA512};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use sigstore_crypto::error::Error;
use sigstore_crypto::{CryptoProvider, HashContext, SigningScheme};
use sigstore_types::HashAlgorithm;

/// The provider; [`install`] makes it the process's.
#[derive(Debug)]
pub struct Ring;

static RING: Ring = Ring;

/// Installs [`Ring`] as `sigstore-verify`'s provider (once per process; later calls are no-ops).
pub fn install() {
    let _ = sigstore_crypto::install_default_provider(&RING);
}

struct Hashing(Context);

impl HashContext for Hashing {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

fn algorithm(scheme: SigningScheme) -> Result<&'static dyn VerificationAlgorithm, Error> {
    Ok(match scheme {
        SigningScheme::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
        SigningScheme::EcdsaP256Sha384 => &signature::ECDSA_P256_SHA384_ASN1,
        SigningScheme::EcdsaP384Sha256 => &signature::ECDSA_P384_SHA256_ASN1,
        SigningScheme::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        SigningScheme::Ed25519 => &signature::ED25519,
        SigningScheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        SigningScheme::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        SigningScheme::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        SigningScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        SigningScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        SigningScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        other => {
            return Err(Error::UnsupportedAlgorithm(format!(
                "{} signatures",
                other.name()
            )));
        }
    })
}

impl CryptoProvider for Ring {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>, Error> {
        let algorithm = match algorithm {
            HashAlgorithm::Sha2256 => &SHA256,
            HashAlgorithm::Sha2384 => &SHA384,
            HashAlgorithm::Sha2512 => &SHA512,
            #[allow(unreachable_patterns)]
            other => {
                return Err(Error::UnsupportedAlgorithm(format!("{other} digests")));
            }
        };
        Ok(Box::new(Hashing(Context::new(algorithm))))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(digest::digest(&SHA256, data).as_ref());
        out
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        public_key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        UnparsedPublicKey::new(algorithm(scheme)?, public_key)
            .verify(data, signature)
            .map_err(|_| Error::Verification(format!("{} signature invalid", scheme.name())))
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        public_key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let invalid = || Error::Verification(format!("{} signature invalid", scheme.name()));
        let bad_key = |e: p256::ecdsa::Error| Error::InvalidKey(e.to_string());
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let key =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(bad_key)?;
                let signature =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| invalid())
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let key =
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(bad_key)?;
                let signature =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| invalid())
            }
            other => Err(Error::UnsupportedAlgorithm(format!(
                "{} over a precomputed digest",
                other.name()
            ))),
        }
    }
}
