//! Where an image lives, from `source.repository`, and whether a container's `image` is from it.

use super::reference::Reference;
use crate::error::{Error, Result};

/// Where an image lives: the API host and the repository name on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The host (and port) to send API requests to, e.g. `ghcr.io` or `registry-1.docker.io`.
    pub host: String,
    /// The repository path on that host, e.g. `werdnum/family-assistant` or `library/alpine`.
    pub path: String,
}

impl ImageName {
    /// Parses `source.repository` the way docker does (`alpine` → Docker Hub's `library/alpine`).
    ///
    /// ```
    /// use image_rollout_resource::registry::ImageName;
    /// let n = ImageName::parse("alpine").unwrap();
    /// assert_eq!((n.host.as_str(), n.path.as_str()), ("registry-1.docker.io", "library/alpine"));
    /// assert!(ImageName::parse("ghcr.io/a/b:main").is_err());
    /// ```
    pub fn parse(repository: &str) -> Result<ImageName> {
        let bad = |message: String| Error::Config {
            key: "source.repository",
            message,
        };
        let reference: Reference = repository
            .parse()
            .map_err(|e| bad(format!("`{repository}` is not a valid repository: {e}")))?;
        if reference.digest.is_some() {
            return Err(bad(format!(
                "`{repository}` contains a digest; give the repository only (registry/name) and put the tag in source.tag"
            )));
        }
        if let Some(tag) = reference.tag {
            return Err(bad(format!(
                "`{repository}` contains the tag `{tag}`; give the repository only and set source.tag: {tag}"
            )));
        }
        // The grammar lets `Team/app` through as a Docker Hub name; no registry serves one.
        if reference.repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad(format!(
                "`{repository}`: repository names are lowercase"
            )));
        }
        let host = match reference.registry.as_str() {
            // Docker Hub's API host is not its name.
            "docker.io" => "registry-1.docker.io".to_string(),
            _ => reference.registry,
        };
        Ok(ImageName {
            host,
            path: reference.repository,
        })
    }
}

/// Whether a container's `image` (`repo`, `repo:tag`, `repo@digest`, `repo:tag@digest`) is from
/// `repository`, comparing normalised names (`alpine` is `docker.io/library/alpine`).
pub fn same_repository(image: &str, repository: &ImageName) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name = match without_digest.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    };
    ImageName::parse(name).is_ok_and(|n| &n == repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_match_ignores_tag_digest_and_docker_hub_spelling() {
        let repo = ImageName::parse("127.0.0.1:5000/team/app").unwrap();
        assert!(same_repository("127.0.0.1:5000/team/app", &repo));
        assert!(same_repository("127.0.0.1:5000/team/app:v1", &repo));
        assert!(same_repository("127.0.0.1:5000/team/app@sha256:abc", &repo));
        assert!(!same_repository(
            "127.0.0.1:5000/team/app-sidecar:v1",
            &repo
        ));
        let hub = ImageName::parse("alpine").unwrap();
        assert!(same_repository("docker.io/library/alpine:3.20", &hub));
        assert!(!same_repository("envoyproxy/envoy:v1", &hub));
    }
}
