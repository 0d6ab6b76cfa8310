//! What both put modes share, below them: which digest to deploy (the one a `get` step wrote,
//! `params.digest`, or the tag's now — and only if `source.verify` accepts its signature), which
//! workloads to roll, and the change-cause both record. The modes ([`crate::rollout`],
//! [`crate::gitops`]) import this; it imports neither.

use std::collections::HashSet;
use std::path::Path;

use crate::config::{OutParams, Source, Version, WorkloadRef};
use crate::error::{Error, Result, quote};
use crate::registry::{ImageName, Registry};

/// The version to deploy (see `resolve`), refused unless signed as `source.verify` demands.
pub async fn deployable(source: &Source, params: &OutParams, dir: &Path) -> Result<Version> {
    let version = resolve(source, params, dir).await?;
    if source.verify.is_some() {
        crate::verify::require(source, &Registry::new(source)?, &version.digest).await?;
    }
    Ok(version)
}

/// The version to deploy: from a `get` step's directory, from `params.digest`, or what the
/// source's tag policy points at now. The tag (when known) only labels it.
async fn resolve(source: &Source, params: &OutParams, dir: &Path) -> Result<Version> {
    match (&params.image, &params.digest) {
        (Some(_), Some(_)) => Err(Error::Config {
            key: "params.digest",
            message: "set either params.image or params.digest, not both".into(),
        }),
        (None, Some(digest)) => Ok(Version {
            digest: digest.clone(),
            tag: None,
        }),
        (Some(path), None) => {
            let read = |name: &str| {
                let file = dir.join(path).join(name);
                std::fs::read_to_string(&file)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| Error::File {
                        path: file.display().to_string(),
                        message: format!("cannot read ({e}); params.image must name the directory of a get step of this image"),
                    })
            };
            let repository = read("repository")?;
            let same =
                ImageName::parse(&repository).ok() == Some(ImageName::parse(&source.repository)?);
            if !same {
                return Err(Error::Config {
                    key: "params.image",
                    message: format!(
                        "{path}/repository is {} but source.repository is {}; refusing to deploy another image",
                        quote(&repository),
                        quote(&source.repository)
                    ),
                });
            }
            let digest = read("digest")?.parse().map_err(|message| Error::File {
                path: dir.join(path).join("digest").display().to_string(),
                message,
            })?;
            // `in` writes it; a directory from another resource may not have one.
            let tag = read("tag").ok().filter(|t| !t.is_empty());
            Ok(Version { digest, tag })
        }
        (None, None) => crate::policy::current(&Registry::new(source)?, source).await,
    }
}

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

/// `ghcr.io/o/app@sha256:… (v1.4.2)`: the image, and the tag it was found under when known.
pub fn label(image: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{image} ({tag})"),
        None => image.to_string(),
    }
}

/// `kubernetes.io/change-cause` (and the GitOps commit's body): which build deployed what (the
/// image, and its tag when known), with a link back to it — a Concourse build, or the GitHub
/// Actions run of the Action.
pub fn change_cause(image: &str, tag: Option<&str>) -> String {
    let image = label(image, tag);
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("BUILD_PIPELINE_NAME"),
        var("BUILD_JOB_NAME"),
        var("BUILD_NAME"),
    ) {
        (Some(pipeline), Some(job), Some(build)) => {
            let team = var("BUILD_TEAM_NAME").unwrap_or_else(|| "main".into());
            let url = var("ATC_EXTERNAL_URL")
                .map(|atc| {
                    format!(
                        " {}/teams/{team}/pipelines/{pipeline}/jobs/{job}/builds/{build}",
                        atc.trim_end_matches('/')
                    )
                })
                .unwrap_or_default();
            format!("image-rollout {image} by {pipeline}/{job} #{build}{url}")
        }
        // The GitHub Action, in the app's workflow: the run that built and pushed the image.
        _ => match (
            var("GITHUB_SERVER_URL"),
            var("GITHUB_REPOSITORY"),
            var("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repository), Some(run)) => format!(
                "image-rollout {image} by {repository} run {run} {}/{repository}/actions/runs/{run}",
                server.trim_end_matches('/')
            ),
            _ => format!("image-rollout {image}"),
        },
    }
}
