//! What a put targets: the workloads it names, and in each the containers whose image it
//! replaces. Both modes select the same way, so a switch from one to the other changes nothing
//! about which images move.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::config::{OutParams, Source, WorkloadRef};
use crate::error::{Error, Result, comma, quote};
use crate::registry::ImageName;

/// `workloads`, or `deployment` as shorthand; params override source.
pub fn workloads(source: &Source, params: &OutParams) -> Result<Vec<WorkloadRef>> {
    let (deployment, workloads, key) = if params.deployment.is_some() || params.workloads.is_some()
    {
        (&params.deployment, &params.workloads, "params")
    } else {
        (&source.deployment, &source.workloads, "source")
    };
    let bad = |message: &str| Error::Config {
        key: if key == "params" {
            "params.workloads"
        } else {
            "source.workloads"
        },
        message: message.into(),
    };
    let list = match (deployment, workloads) {
        (Some(_), Some(_)) => return Err(bad("set either deployment or workloads, not both")),
        (Some(name), None) => {
            vec![WorkloadRef::try_from(format!("deployment/{name}")).map_err(|m| bad(&m))?]
        }
        (None, Some(list)) if !list.is_empty() => list.clone(),
        _ => {
            return Err(bad(
                "nothing to roll: set deployment: NAME or workloads: [deployment/NAME, ...]",
            ));
        }
    };
    let mut seen = HashSet::new();
    if let Some(dup) = list.iter().find(|w| !seen.insert(*w)) {
        return Err(bad(&format!("{dup} is listed twice")));
    }
    Ok(list)
}

/// A container `out` will update.
pub struct Selected {
    pub name: String,
    pub image: String,
    pub init: bool,
}

/// The containers to update: `container` if given, else every container and initContainer whose
/// image is from `repository` (sidecars from other repositories are left alone).
pub fn select_containers(
    template: &PodTemplateSpec,
    container: Option<&str>,
    repository: &ImageName,
    workload: &WorkloadRef,
) -> Result<Vec<Selected>> {
    let spec = template.spec.clone().unwrap_or_default();
    let all: Vec<Selected> = spec
        .init_containers
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c, true))
        .chain(spec.containers.into_iter().map(|c| (c, false)))
        .map(|(c, init)| Selected {
            name: c.name,
            image: c.image.unwrap_or_default(),
            init,
        })
        .collect();
    let describe_all = || comma(all.iter().map(|c| format!("{} ({})", c.name, c.image)));
    let (selected, what): (Vec<Selected>, String) = match container {
        Some(name) => {
            let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
            let found = all.into_iter().filter(|c| c.name == name).collect();
            (
                found,
                format!(
                    "no container named {} (it has: {})",
                    quote(name),
                    comma(&names)
                ),
            )
        }
        None => {
            let text = describe_all();
            let found = all
                .into_iter()
                .filter(|c| same_repository(&c.image, repository))
                .collect();
            (
                found,
                format!(
                    "no container runs an image of {}/{} (it has: {text}); set container: NAME",
                    repository.host, repository.path
                ),
            )
        }
    };
    if selected.is_empty() {
        return Err(Error::Config {
            key: if container.is_some() {
                "container"
            } else {
                "source.repository"
            },
            message: format!("{workload} has {what}"),
        });
    }
    Ok(selected)
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
