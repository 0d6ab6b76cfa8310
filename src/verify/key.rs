//! The public keys signatures are checked with: a key of `source.verify.public_keys`, a keyless
//! certificate's key, a Rekor or CT log's key. ECDSA P-256 and P-384, verified by ring.

use super::der;

/// An ECDSA public key as ring verifies it: the curve's algorithm and the uncompressed point.
#[derive(Debug, Clone)]
pub struct PublicKey {
    curve: der::Curve,
    algorithm: &'static ring::signature::EcdsaVerificationAlgorithm,
    point: Vec<u8>,
}

impl PublicKey {
    /// From a DER `SubjectPublicKeyInfo` (PEM `PUBLIC KEY`, a certificate's key, a Rekor key).
    pub fn from_spki(spki: &[u8]) -> Result<PublicKey, String> {
        let (curve, point) = der::ec_public_key(spki)?;
        let algorithm = match curve {
            der::Curve::P256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            der::Curve::P384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
        };
        Ok(PublicKey {
            curve,
            algorithm,
            point: point.to_vec(),
        })
    }

    /// The key's curve, which fixes the hash it signs with (P-256: SHA-256, P-384: SHA-384).
    pub fn curve(&self) -> der::Curve {
        self.curve
    }

    /// Whether `signature` (DER, as cosign writes it) signs `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(self.algorithm, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}
