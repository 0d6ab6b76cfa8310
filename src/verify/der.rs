//! Just enough DER to read what signature verification needs from an X.509 certificate and a
//! public key: the `SubjectPublicKeyInfo`, the subject alternative names, and Fulcio's OIDC
//! issuer extension. rustls-webpki (already linked) validates the certificate path but does not
//! expose these fields; a full X.509 crate would add far more code than this reader. The unit
//! tests hold it against `x509-parser` on generated certificates.

/// The curves cosign keys and Sigstore's certificates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// What the verification reads from a certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertificateFields<'a> {
    /// The whole `SubjectPublicKeyInfo` element.
    pub spki: &'a [u8],
    /// URI and e-mail subject alternative names, in order.
    pub identities: Vec<String>,
    /// Fulcio's OIDC issuer: extension 1.3.6.1.4.1.57264.1.8 (a UTF8String), else the older
    /// 1.3.6.1.4.1.57264.1.1 (raw bytes).
    pub issuer: Option<String>,
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const UTF8_STRING: u8 = 0x0c;
const EXTENSIONS: u8 = 0xa3;
const SAN_EMAIL: u8 = 0x81;
const SAN_URI: u8 = 0x86;

const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const FULCIO_ISSUER_V1: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x01];
const FULCIO_ISSUER_V2: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x08];

/// One element: its tag, its contents, and the whole encoding (tag and length included).
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Reads consecutive elements from a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn next(&mut self) -> Result<Element<'a>, String> {
        let input = self.0;
        let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
        let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
        let (length, rest) = match first {
            n if n < 0x80 => (n as usize, rest),
            0x81..=0x84 => {
                let count = (first & 0x7f) as usize;
                if rest.len() < count {
                    return Err("truncated DER length".into());
                }
                let (bytes, rest) = rest.split_at(count);
                (
                    bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize),
                    rest,
                )
            }
            _ => return Err("unsupported DER length".into()),
        };
        if rest.len() < length {
            return Err("truncated DER".into());
        }
        let (contents, rest) = rest.split_at(length);
        let whole = &input[..input.len() - rest.len()];
        self.0 = rest;
        Ok(Element {
            tag,
            contents,
            whole,
        })
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &str) -> Result<Element<'a>, String> {
        let element = self.next()?;
        if element.tag == tag {
            Ok(element)
        } else {
            Err(format!("malformed DER: expected {what}"))
        }
    }
}

/// The curve and uncompressed point of an EC `SubjectPublicKeyInfo`.
pub fn ec_public_key(spki: &[u8]) -> Result<(Curve, &[u8]), String> {
    let mut outer = Reader(spki);
    let mut info = Reader(outer.expect(SEQUENCE, "SubjectPublicKeyInfo")?.contents);
    let mut algorithm = Reader(info.expect(SEQUENCE, "AlgorithmIdentifier")?.contents);
    if algorithm.expect(OID, "algorithm")?.contents != EC_PUBLIC_KEY {
        return Err("not an ECDSA public key (cosign's keys are ECDSA P-256)".into());
    }
    let curve = match algorithm.expect(OID, "named curve")?.contents {
        P256 => Curve::P256,
        P384 => Curve::P384,
        _ => return Err("an ECDSA key on a curve other than P-256 or P-384".into()),
    };
    match info.expect(BIT_STRING, "public key")?.contents {
        [0, point @ ..] if !point.is_empty() => Ok((curve, point)),
        _ => Err("malformed public key bit string".into()),
    }
}

/// The fields of an X.509 certificate (DER) that the signature checks use.
pub fn certificate(der: &[u8]) -> Result<CertificateFields<'_>, String> {
    let mut outer = Reader(der);
    let mut certificate = Reader(outer.expect(SEQUENCE, "Certificate")?.contents);
    let mut tbs = Reader(certificate.expect(SEQUENCE, "TBSCertificate")?.contents);
    if tbs.peek_tag() == Some(0xa0) {
        tbs.next()?; // version
    }
    // serial, signature algorithm, issuer, validity, subject
    for _ in 0..5 {
        tbs.next()?;
    }
    let mut fields = CertificateFields {
        spki: tbs.expect(SEQUENCE, "SubjectPublicKeyInfo")?.whole,
        ..CertificateFields::default()
    };
    while !tbs.is_empty() {
        let element = tbs.next()?;
        if element.tag != EXTENSIONS {
            continue; // issuer / subject unique IDs
        }
        let mut list = Reader(
            Reader(element.contents)
                .expect(SEQUENCE, "Extensions")?
                .contents,
        );
        while !list.is_empty() {
            let mut extension = Reader(list.expect(SEQUENCE, "Extension")?.contents);
            let id = extension.expect(OID, "extension id")?.contents;
            let mut value = extension.next()?;
            if value.tag != OCTET_STRING {
                value = extension.expect(OCTET_STRING, "extension value")?; // after `critical`
            }
            match id {
                SUBJECT_ALT_NAME => fields.identities = alt_names(value.contents)?,
                FULCIO_ISSUER_V2 => {
                    let text = Reader(value.contents).expect(UTF8_STRING, "issuer UTF8String")?;
                    fields.issuer = Some(text_of(text.contents)?);
                }
                FULCIO_ISSUER_V1 if fields.issuer.is_none() => {
                    fields.issuer = Some(text_of(value.contents)?);
                }
                _ => {}
            }
        }
    }
    Ok(fields)
}

fn alt_names(value: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Reader(Reader(value).expect(SEQUENCE, "GeneralNames")?.contents);
    let mut out = Vec::new();
    while !names.is_empty() {
        let name = names.next()?;
        if matches!(name.tag, SAN_EMAIL | SAN_URI) {
            out.push(text_of(name.contents)?);
        }
    }
    Ok(out)
}

fn text_of(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a certificate name is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
    use x509_parser::prelude::*;

    /// The oracle: what x509-parser reads from the same certificate.
    fn oracle(der: &[u8]) -> (Vec<u8>, Vec<String>, Option<String>) {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let mut identities = Vec::new();
        let mut v1 = None;
        let mut v2 = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                                identities.push(s.to_string())
                            }
                            _ => {}
                        }
                    }
                }
                _ => match ext.oid.to_id_string().as_str() {
                    "1.3.6.1.4.1.57264.1.1" => {
                        v1 = Some(String::from_utf8(ext.value.to_vec()).unwrap())
                    }
                    "1.3.6.1.4.1.57264.1.8" => {
                        let (_, any) =
                            x509_parser::der_parser::der::parse_der_utf8string(ext.value).unwrap();
                        v2 = Some(any.as_str().unwrap().to_string())
                    }
                    _ => {}
                },
            }
        }
        (cert.public_key().raw.to_vec(), identities, v2.or(v1))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any mix of URI, e-mail and DNS names, either issuer extension or both (critical or
        /// not), on a P-256 or P-384 key: the reader agrees with x509-parser on every field.
        #[test]
        fn reads_what_x509_parser_reads(
            names in prop::collection::vec((0u8..3, "[!-~]{1,200}"), 0..4),
            issuer in "[!-~]{1,200}",
            v1 in any::<bool>(),
            v2 in any::<bool>(),
            critical in any::<bool>(),
            p384 in any::<bool>(),
        ) {
            let key = KeyPair::generate_for(if p384 {
                &rcgen::PKCS_ECDSA_P384_SHA384
            } else {
                &rcgen::PKCS_ECDSA_P256_SHA256
            })
            .unwrap();
            let mut params = CertificateParams::default();
            for (kind, text) in names {
                params.subject_alt_names.push(match kind {
                    0 => SanType::URI(text.try_into().unwrap()),
                    1 => SanType::Rfc822Name(text.try_into().unwrap()),
                    _ => SanType::DnsName("example.com".try_into().unwrap()),
                });
            }
            if v1 {
                params.custom_extensions.push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                    issuer.clone().into_bytes(),
                ));
            }
            if v2 {
                let mut value = vec![UTF8_STRING];
                if issuer.len() >= 0x80 {
                    value.push(0x81); // long form, one length byte
                }
                value.push(issuer.len() as u8);
                value.extend_from_slice(issuer.as_bytes());
                let mut ext =
                    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], value);
                ext.set_criticality(critical);
                params.custom_extensions.push(ext);
            }
            let cert = params.self_signed(&key).unwrap();
            let fields = certificate(cert.der()).unwrap();
            let (spki, identities, issuer) = oracle(cert.der());
            prop_assert_eq!(fields.spki, spki.as_slice());
            prop_assert_eq!(fields.identities, identities);
            prop_assert_eq!(fields.issuer, issuer);
            let (curve, _) = ec_public_key(fields.spki).unwrap();
            prop_assert_eq!(curve, if p384 { Curve::P384 } else { Curve::P256 });
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["x.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der();
        for end in 0..der.len() {
            assert!(certificate(&der[..end]).is_err(), "prefix of {end} bytes");
        }
    }
}
