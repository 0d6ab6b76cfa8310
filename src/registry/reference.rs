//! Image references (`[registry/]name[:tag][@digest]`) by the grammar of distribution's
//! `reference` package, normalised the way docker and `oci-spec` normalise them (`alpine` is
//! `docker.io/library/alpine`).
//!
//! Hand-written instead of `oci_spec::distribution::Reference`: that type matches one large
//! Unicode regex, and compiling it on the first parse cost `check` ~45 ms and ~17 MiB of its
//! 50 ms and 21 MiB. `tests/reference.rs` holds this parser to `oci-spec`'s on generated and
//! hand-picked references, so the OCI project's rules stay the judge. One deliberate difference:
//! tags are ASCII here, as in distribution's grammar (`[\w][\w.-]{0,127}` in Go's regexp syntax);
//! `oci-spec`'s Rust regex reads `\w` as Unicode and accepts `app:é`.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]            host := component { "." component }
//! component        := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//! path             := path-component { "/" path-component }
//! path-component   := [a-z0-9]+ { separator [a-z0-9]+ }    separator := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm        := [A-Za-z][A-Za-z0-9]* { [-_+.] [A-Za-z][A-Za-z0-9]* }
//! ```

/// A parsed reference. `tag` and `digest` are as written: no `latest` is invented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io` for Docker Hub names (`index.docker.io` included), else the domain as written.
    pub registry: String,
    /// The repository path on the registry; Docker Hub's one-component names get `library/`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a string is not a reference (the same cases as `oci_spec`'s `ParseError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("it is empty")]
    Empty,
    #[error("not of the form [registry/]name[:tag][@digest], with a lowercase name")]
    InvalidFormat,
    #[error("the repository name is longer than {MAX_NAME} characters")]
    NameTooLong,
    #[error("the digest has the wrong length for its algorithm")]
    DigestInvalidLength,
    #[error("the digest algorithm is not sha256, sha384 or sha512")]
    DigestUnsupported,
}

/// Distribution's `NameTotalLengthMax`, applied (as `oci-spec` does) to the normalised repository.
const MAX_NAME: usize = 255;

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    /// ```
    /// use image_rollout_resource::registry::reference::Reference;
    /// let r: Reference = "localhost:5000/team/app:v1".parse().unwrap();
    /// assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost:5000", "team/app"));
    /// assert_eq!(r.tag.as_deref(), Some("v1"));
    /// let hub: Reference = "alpine".parse().unwrap();
    /// assert_eq!((hub.registry.as_str(), hub.repository.as_str()), ("docker.io", "library/alpine"));
    /// ```
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        // Neither name nor tag may hold an `@`, and only a port (always followed by a `/`) puts a
        // `:` into a name, so the three parts split without backtracking.
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (s, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (rest, None),
        };
        if !is_name(name) || !tag.is_none_or(is_tag) || !digest.is_none_or(is_digest) {
            return Err(ReferenceError::InvalidFormat);
        }
        let (registry, repository) = split_domain(name);
        if repository.len() > MAX_NAME {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(digest) = digest {
            let (algorithm, hex) = digest.split_once(':').expect("checked by is_digest");
            let length = match algorithm {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(ReferenceError::DigestUnsupported),
            };
            if hex.len() != length {
                return Err(ReferenceError::DigestInvalidLength);
            }
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }
}

/// `[domain "/"] path`. A domain cannot hold a `/`, so it can only be the first component.
fn is_name(name: &str) -> bool {
    is_path(name)
        || name
            .split_once('/')
            .is_some_and(|(domain, path)| is_domain(domain) && is_path(path))
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    host.split('.').all(|c| {
        let bytes = c.as_bytes();
        matches!((bytes.first(), bytes.last()), (Some(a), Some(z)) if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    }) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

/// Lowercase alphanumeric runs joined by exactly `.`, `_`, `__` or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !(bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum)) {
        return false;
    }
    bytes.split(alnum).all(|separator| {
        matches!(separator, b"" | b"." | b"_" | b"__") || separator.iter().all(|b| *b == b'-')
    })
}

fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(word)
        && bytes.len() <= 128
        && bytes.iter().all(|b| word(b) || matches!(b, b'.' | b'-'))
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        let bytes = c.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Docker's normalisation: a first component is a registry only if it looks like a host (has a
/// `.` or a `:`, or is `localhost`); everything else is on Docker Hub, where a single-component
/// name is an official image under `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    if domain == "index.docker.io" {
        domain = "docker.io";
    }
    let repository = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder.to_string()
    };
    (domain.to_string(), repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Reference, ReferenceError> {
        s.parse()
    }

    #[test]
    fn separators_in_path_components() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a-b.c_d__e", "0"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "a..b", "a___b", "a._b", "a-.b", ".a", "a-", "_a", "A", "a/b",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn a_colon_before_the_last_slash_is_a_port() {
        let r = parse("host:5000/app").unwrap();
        assert_eq!((r.registry.as_str(), r.tag), ("host:5000", None));
        assert_eq!(parse("host:port/app"), Err(ReferenceError::InvalidFormat));
    }
}
