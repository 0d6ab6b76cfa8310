//! `source.git.known_hosts`: OpenSSH `known_hosts` lines, the only thing that makes an ssh server
//! trusted. There is no "accept the first key": a host without a line is a configuration error,
//! a key that differs from the listed ones refuses the connection.
//!
//! The format is OpenSSH's (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): `hostnames keytype base64
//! [comment]`, host names comma-separated, `[host]:port` for ports other than 22, `*`/`?`
//! wildcards, `!` negation, hashed names (`|1|salt|hmac`, `ssh-keyscan -H`), `@revoked` lines.
//! `@cert-authority` lines are skipped: host certificates are not supported, so they never make
//! a host trusted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use russh::keys::{Algorithm, HashAlg, PublicKey};

pub struct KnownHosts {
    entries: Vec<Entry>,
}

struct Entry {
    revoked: bool,
    hosts: Vec<Pattern>,
    key: PublicKey,
}

enum Pattern {
    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`
    Hashed {
        salt: Vec<u8>,
        hmac: Vec<u8>,
    },
    Glob {
        negated: bool,
        glob: String,
    },
}

/// What `known_hosts` says about the key a server presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Trusted,
    /// Listed in an `@revoked` line.
    Revoked,
    /// The host is listed, with other keys (their fingerprints).
    Mismatch(Vec<String>),
}

impl KnownHosts {
    /// Parses the lines; a line that is not `[marker] hosts keytype key [comment]` is an error
    /// naming its number (a bad paste should fail here, not look like a changed host key).
    pub fn parse(text: &str) -> Result<KnownHosts, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", number + 1);
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let mut revoked = false;
            if let Some(marker) = first.strip_prefix('@') {
                match marker {
                    "revoked" => revoked = true,
                    "cert-authority" => continue,
                    other => return Err(bad(&format!("unknown marker @{other}"))),
                }
                first = fields.next().unwrap_or_default();
            }
            let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
                return Err(bad(
                    "is not `host keytype key` (the format ssh-keyscan prints)",
                ));
            };
            let key = PublicKey::from_openssh(&format!("{kind} {data}"))
                .map_err(|e| bad(&format!("{kind} key does not parse ({e})")))?;
            let hosts = first
                .split(',')
                .map(|p| Pattern::parse(p).ok_or_else(|| bad(&format!("bad host name `{p}`"))))
                .collect::<Result<_, _>>()?;
            entries.push(Entry {
                revoked,
                hosts,
                key,
            });
        }
        Ok(KnownHosts { entries })
    }

    /// The keys listed for `host` on `port` (not the revoked ones).
    pub fn keys(&self, host: &str, port: u16) -> Vec<&PublicKey> {
        let name = name(host, port);
        self.entries
            .iter()
            .filter(|e| !e.revoked && matches(&e.hosts, &name))
            .map(|e| &e.key)
            .collect()
    }

    /// Whether `offered` is a key of `host` on `port`.
    pub fn check(&self, host: &str, port: u16, offered: &PublicKey) -> Verdict {
        if self
            .entries
            .iter()
            .any(|e| e.revoked && same_key(&e.key, offered))
        {
            return Verdict::Revoked;
        }
        let listed = self.keys(host, port);
        if listed.iter().any(|k| same_key(k, offered)) {
            Verdict::Trusted
        } else {
            Verdict::Mismatch(listed.into_iter().map(describe).collect())
        }
    }
}

/// How a host is named in known_hosts: `host`, or `[host]:port` off port 22.
pub fn name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `ssh-ed25519 SHA256:…`, as `ssh-keygen -lf` shows a key.
pub fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

/// The host key algorithms to offer, those `known` lists first: a server with several host keys
/// then presents one that can be checked (as OpenSSH orders them).
pub fn preferred(known: &[&PublicKey], all: &[Algorithm]) -> Vec<Algorithm> {
    let listed = |a: &Algorithm| known.iter().any(|k| same_family(&k.algorithm(), a));
    let (mut first, rest): (Vec<_>, Vec<_>) = all.iter().cloned().partition(listed);
    first.extend(rest);
    first
}

/// RSA keys sign with several hashes (`rsa-sha2-512`, …); the key is the same.
fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    a == b || (matches!(a, Algorithm::Rsa { .. }) && matches!(b, Algorithm::Rsa { .. }))
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

fn matches(patterns: &[Pattern], name: &str) -> bool {
    let mut positive = false;
    for pattern in patterns {
        match pattern {
            Pattern::Hashed { salt, hmac } => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                positive |= ring::hmac::verify(&key, name.as_bytes(), hmac).is_ok();
            }
            Pattern::Glob { negated, glob } if wildcard(glob.as_bytes(), name.as_bytes()) => {
                if *negated {
                    return false;
                }
                positive = true;
            }
            Pattern::Glob { .. } => {}
        }
    }
    positive
}

impl Pattern {
    fn parse(text: &str) -> Option<Pattern> {
        if let Some(hashed) = text.strip_prefix("|1|") {
            let (salt, hmac) = hashed.split_once('|')?;
            return Some(Pattern::Hashed {
                salt: STANDARD.decode(salt).ok()?,
                hmac: STANDARD.decode(hmac).ok()?,
            });
        }
        let (negated, glob) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        (!glob.is_empty()).then(|| Pattern::Glob {
            negated,
            glob: glob.to_ascii_lowercase(),
        })
    }
}

/// OpenSSH's `match_pattern`: `*` any run, `?` any one character.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two ed25519 host keys (public halves only: made by ssh-keygen for these tests).
    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN2PjuWuyVqSF3ixPE6Tr9VlQTYOC6FSdvobhI1iMy0/";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDRot5xfQaFqCvUnJafH/Fmxfffy7YHGG5qI0PKaFzPU";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn keyscan_lines_match_by_host_and_port() {
        let known = KnownHosts::parse(&format!(
            "# 127.0.0.1:2222 SSH-2.0-OpenSSH_9.2p1\n[127.0.0.1]:2222 {A}\ngithub.com,140.82.121.4 {B} comment\n"
        ))
        .unwrap();
        assert_eq!(known.check("127.0.0.1", 2222, &key(A)), Verdict::Trusted);
        assert_eq!(known.check("GitHub.com", 22, &key(B)), Verdict::Trusted);
        // The same host on another port is another host.
        assert_eq!(
            known.check("127.0.0.1", 22, &key(A)),
            Verdict::Mismatch(vec![])
        );
        assert_eq!(
            known.check("127.0.0.1", 2222, &key(B)),
            Verdict::Mismatch(vec![describe(&key(A))])
        );
        assert!(describe(&key(A)).starts_with("ssh-ed25519 SHA256:"));
    }

    #[test]
    fn hashed_names_wildcards_negation_and_revocation() {
        // `ssh-keygen -H` of "[127.0.0.1]:2222" with this salt.
        let salt = [7u8; 20];
        let hmac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt),
            b"[127.0.0.1]:2222",
        );
        let hashed = format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(hmac.as_ref())
        );
        let known = KnownHosts::parse(&format!(
            "{hashed} {A}\n*.example.com,!evil.example.com {B}\n@revoked * {A}\n@cert-authority * {B}\n"
        ))
        .unwrap();
        assert_eq!(known.keys("127.0.0.1", 2222).len(), 1);
        assert_eq!(
            known.check("git.example.com", 22, &key(B)),
            Verdict::Trusted
        );
        assert!(known.keys("evil.example.com", 22).is_empty());
        assert!(known.keys("example.com", 22).is_empty());
        assert_eq!(known.check("127.0.0.1", 2222, &key(A)), Verdict::Revoked);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let error = KnownHosts::parse(&format!("{A}\n")).err().unwrap();
        assert!(error.starts_with("line 1: "), "{error}");
        let error = KnownHosts::parse(&format!("\nhost {A}\nhost ssh-ed25519 AAAA\n"))
            .err()
            .unwrap();
        assert!(
            error.starts_with("line 3: ssh-ed25519 key does not parse"),
            "{error}"
        );
    }

    #[test]
    fn listed_key_types_are_offered_first() {
        let all = russh::Preferred::DEFAULT.key.to_vec();
        let rsa = key(
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC2dEvIW9r5Sl30cdBrWLEXTwni1hp+BDsjUmYj8yzz+y+N65ZKvqyRAjnPBmq9WQ544X/D5NVizP5NnAGlsQRKQzYPigakuE7R61MTyTlLbHyHXUVY3WxxbEjdavhRH6MPS592xSKdDTOJAUYj0xgIuhtTup4ArilzrlnMBRw+Jw==",
        );
        let order = preferred(&[&rsa], &all);
        assert!(
            matches!(order[..2], [Algorithm::Rsa { .. }, Algorithm::Rsa { .. }]),
            "{order:?}"
        );
        assert_eq!(order.len(), all.len());
        assert_eq!(preferred(&[&key(A)], &all)[0], Algorithm::Ed25519);
    }
}
