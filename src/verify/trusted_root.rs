//! The parts of Sigstore's `trusted_root.json` (protobuf-specs `TrustedRoot`) that keyless
//! verification reads: the Fulcio CAs, the Rekor logs, the CT logs, and the period (`validFor`)
//! in which the root says each was in use. Decoding the keys and certificates is
//! [`super::keyless`]'s job; this is the file's shape.

use std::time::SystemTime;

use serde::Deserialize;

/// When the trusted root says a CA or a key was in use (`validFor`; an open end is unbounded).
#[derive(Debug, Clone, Copy)]
pub struct Period {
    from: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Period {
    pub(super) fn parse(valid_for: Option<&ValidFor>, what: &str) -> Result<Period, String> {
        let time = |t: Option<&String>| {
            t.map(|t| humantime::parse_rfc3339(t))
                .transpose()
                .map_err(|e| format!("a {what} validFor time: {e}"))
        };
        Ok(Period {
            from: time(valid_for.and_then(|v| v.start.as_ref()))?,
            until: time(valid_for.and_then(|v| v.end.as_ref()))?,
        })
    }

    pub fn contains(&self, t: SystemTime) -> bool {
        self.from.is_none_or(|from| from <= t) && self.until.is_none_or(|until| t <= until)
    }
}

/// The parts of Sigstore's `trusted_root.json` (protobuf-specs `TrustedRoot`) used here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrustedRoot {
    #[serde(default)]
    pub(super) tlogs: Vec<TransparencyLog>,
    #[serde(default)]
    pub(super) certificate_authorities: Vec<CertificateAuthority>,
    #[serde(default)]
    pub(super) ctlogs: Vec<TransparencyLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TransparencyLog {
    pub(super) public_key: LogKey,
    pub(super) log_id: LogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogKey {
    pub(super) raw_bytes: String,
    pub(super) valid_for: Option<ValidFor>,
}

/// RFC 3339 times (protobuf `Timestamp` in JSON).
#[derive(Deserialize)]
pub(super) struct ValidFor {
    pub(super) start: Option<String>,
    pub(super) end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogId {
    pub(super) key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CertificateAuthority {
    pub(super) cert_chain: CertChain,
    pub(super) valid_for: Option<ValidFor>,
}

#[derive(Deserialize)]
pub(super) struct CertChain {
    pub(super) certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawBytes {
    pub(super) raw_bytes: String,
}
