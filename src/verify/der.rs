//! Just enough DER to read what signature verification needs from an X.509 certificate and a
//! public key: the `SubjectPublicKeyInfo`, the subject alternative names, Fulcio's OIDC
//! issuer extension, and the embedded SCT list with the precertificate it was issued for. rustls-webpki (already linked) validates the certificate path but does not
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
    /// 1.3.6.1.4.1.57264.1.1 (raw bytes). A certificate whose two say different things is an
    /// error, not resolved: which one a verifier reads must not decide who signed.
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
/// RFC 6962's embedded SCT list, 1.3.6.1.4.1.11129.2.4.2.
const SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];

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
    let tbs = Tbs::read(der)?;
    // version (optional), serial, signature algorithm, issuer, validity, subject, then the key
    let skip = 5 + usize::from(tbs.fields.first().map(|f| f.tag) == Some(0xa0));
    let spki = match tbs.fields.get(skip) {
        Some(f) if f.tag == SEQUENCE => f.whole,
        _ => return Err("malformed DER: expected SubjectPublicKeyInfo".into()),
    };
    let mut fields = CertificateFields {
        spki,
        ..CertificateFields::default()
    };
    let (mut v1, mut v2) = (None, None);
    for extension in &tbs.extensions {
        match extension.id {
            SUBJECT_ALT_NAME => fields.identities = alt_names(extension.value)?,
            FULCIO_ISSUER_V2 => {
                let text = Reader(extension.value).expect(UTF8_STRING, "issuer UTF8String")?;
                v2 = Some(text_of(text.contents)?);
            }
            FULCIO_ISSUER_V1 => v1 = Some(text_of(extension.value)?),
            _ => {}
        }
    }
    if let (Some(v1), Some(v2)) = (&v1, &v2)
        && v1 != v2
    {
        return Err(format!(
            "its OIDC issuer extensions disagree: 1.3.6.1.4.1.57264.1.8 says `{v2}`, 1.3.6.1.4.1.57264.1.1 says `{v1}`"
        ));
    }
    fields.issuer = v2.or(v1);
    Ok(fields)
}

/// What a certificate transparency log signed for a certificate with embedded SCTs (RFC 6962
/// §3.2): the CA logged a precertificate, whose TBSCertificate is the final one's without the
/// SCT list extension, and put the logs' receipts into that extension.
#[derive(Debug, PartialEq, Eq)]
pub struct Precertificate<'a> {
    /// The extension's `SignedCertificateTimestampList`, TLS-encoded.
    pub sct_list: &'a [u8],
    /// The TBSCertificate without the SCT list extension, DER.
    pub tbs: Vec<u8>,
}

/// The embedded SCT list of a certificate and the precertificate TBS it signs, or `None` when
/// the certificate has no SCT list extension.
pub fn precertificate(der: &[u8]) -> Result<Option<Precertificate<'_>>, String> {
    let tbs = Tbs::read(der)?;
    let Some(scts) = tbs.extensions.iter().find(|e| e.id == SCT_LIST) else {
        return Ok(None);
    };
    let sct_list = Reader(scts.value)
        .expect(OCTET_STRING, "SignedCertificateTimestampList")?
        .contents;
    // The lengths of the extension list, its [3] wrapper and the TBS change, so everything
    // around the dropped extension is encoded again; the elements themselves are kept as is.
    let kept: Vec<u8> = (tbs.extensions.iter())
        .filter(|e| e.id != SCT_LIST)
        .flat_map(|e| e.whole.iter().copied())
        .collect();
    let mut contents: Vec<u8> = tbs
        .fields
        .iter()
        .flat_map(|f| f.whole.iter().copied())
        .collect();
    if !kept.is_empty() {
        contents.extend(encode(EXTENSIONS, &encode(SEQUENCE, &kept)));
    }
    Ok(Some(Precertificate {
        sct_list,
        tbs: encode(SEQUENCE, &contents),
    }))
}

/// A TBSCertificate: its fields in order (the extensions wrapper left out) and its extensions.
struct Tbs<'a> {
    fields: Vec<Element<'a>>,
    extensions: Vec<Extension<'a>>,
}

/// One certificate extension: its OID, the contents of its OCTET STRING value, and the whole
/// `Extension` element.
struct Extension<'a> {
    id: &'a [u8],
    value: &'a [u8],
    whole: &'a [u8],
}

impl<'a> Tbs<'a> {
    /// The TBSCertificate of a DER certificate.
    fn read(der: &'a [u8]) -> Result<Tbs<'a>, String> {
        let mut outer = Reader(der);
        let mut certificate = Reader(outer.expect(SEQUENCE, "Certificate")?.contents);
        let mut tbs = Reader(certificate.expect(SEQUENCE, "TBSCertificate")?.contents);
        let mut fields = Vec::new();
        let mut extensions = Vec::new();
        while !tbs.is_empty() {
            let element = tbs.next()?;
            if element.tag != EXTENSIONS {
                fields.push(element);
                continue;
            }
            let mut list = Reader(
                Reader(element.contents)
                    .expect(SEQUENCE, "Extensions")?
                    .contents,
            );
            while !list.is_empty() {
                let whole = list.expect(SEQUENCE, "Extension")?;
                let mut extension = Reader(whole.contents);
                let id = extension.expect(OID, "extension id")?.contents;
                let mut value = extension.next()?;
                if value.tag != OCTET_STRING {
                    value = extension.expect(OCTET_STRING, "extension value")?; // after `critical`
                }
                extensions.push(Extension {
                    id,
                    value: value.contents,
                    whole: whole.whole,
                });
            }
        }
        Ok(Tbs { fields, extensions })
    }
}

/// `tag`, the DER length of `contents`, and `contents`.
fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let length = contents.len();
    let mut out = vec![tag];
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(contents);
    out
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

    /// The oracle: what x509-parser reads from the same certificate, and whether its two issuer
    /// extensions disagree.
    fn oracle(der: &[u8]) -> (Vec<u8>, Vec<String>, Option<String>, bool) {
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
        let disagree = v1.is_some() && v2.is_some() && v1 != v2;
        (
            cert.public_key().raw.to_vec(),
            identities,
            v2.or(v1),
            disagree,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any mix of URI, e-mail and DNS names, either issuer extension or both (critical or
        /// not, agreeing or not), on a P-256 or P-384 key: the reader agrees with x509-parser on
        /// every field, and refuses two issuers that disagree.
        #[test]
        fn reads_what_x509_parser_reads(
            names in prop::collection::vec((0u8..3, "[!-~]{1,200}"), 0..4),
            issuer in "[!-~]{1,200}",
            v1 in any::<bool>(),
            v1_other in any::<bool>(),
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
                    if v1_other { format!("{issuer}x") } else { issuer.clone() }.into_bytes(),
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
            let (spki, identities, issuer, disagree) = oracle(cert.der());
            if disagree {
                let err = certificate(cert.der()).unwrap_err();
                prop_assert!(err.contains("OIDC issuer extensions disagree"), "{}", err);
                return Ok(());
            }
            let fields = certificate(cert.der()).unwrap();
            prop_assert_eq!(fields.spki, spki.as_slice());
            prop_assert_eq!(fields.identities, identities);
            prop_assert_eq!(fields.issuer, issuer);
            let (curve, _) = ec_public_key(fields.spki).unwrap();
            prop_assert_eq!(curve, if p384 { Curve::P384 } else { Curve::P256 });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A certificate with an SCT list extension among others (short and long DER lengths
        /// on either side of 128 and 256 bytes): the precertificate TBS is byte for byte the
        /// TBSCertificate x509-parser reads from the same certificate issued without it.
        #[test]
        fn the_precertificate_is_the_certificate_without_its_sct_list(
            others in prop::collection::vec(0usize..300, 0..4),
            sct_list in prop::collection::vec(any::<u8>(), 0..600),
            position in any::<prop::sample::Index>(),
            names in 0usize..3,
        ) {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(
                (0..names).map(|i| format!("n{i}.example")).collect::<Vec<_>>(),
            )
            .unwrap();
            params.custom_extensions = (others.iter().enumerate())
                .map(|(i, len)| {
                    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 10 + i as u64], vec![0x04; *len])
                })
                .collect();
            let without = params.self_signed(&key).unwrap();
            let at = position.index(params.custom_extensions.len() + 1);
            params.custom_extensions.insert(
                at,
                CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                    encode(OCTET_STRING, &sct_list),
                ),
            );
            let with = params.self_signed(&key).unwrap();

            let read = precertificate(with.der()).unwrap().unwrap();
            prop_assert_eq!(read.sct_list, sct_list.as_slice());
            let (_, oracle) = X509Certificate::from_der(without.der()).unwrap();
            prop_assert_eq!(read.tbs, oracle.tbs_certificate.as_ref());
            prop_assert_eq!(precertificate(without.der()).unwrap(), None);
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
            assert!(
                precertificate(&der[..end]).is_err(),
                "prefix of {end} bytes"
            );
        }
    }
}
