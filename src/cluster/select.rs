//! Which containers of a workload a put replaces the image of. Both modes select the same way, so a
//! switch from one to the other changes nothing about which images move.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::config::WorkloadRef;
use crate::error::{Error, Result, comma, quote};
use crate::registry::{ImageName, same_repository};

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
