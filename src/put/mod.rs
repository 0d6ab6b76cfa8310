//! `put` (`out`): picks the mode `source` asks for and holds what both modes share above the
//! cluster. Where each protocol lives:
//!
//! - `put` (here): which digest to deploy ([`digest`]), which workloads and containers
//!   ([`select`]), and the change-cause both modes record;
//! - [`crate::rollout`], the cluster mode: patch the workloads, roll back what changed;
//! - [`crate::gitops`], the GitOps mode (`source.git`): commit to the config repository, revert
//!   through Git; it never writes to the cluster;
//! - [`crate::cluster`], the Kubernetes side both use: the client, the permission review, and the
//!   wait with its progress lines and fail-fast reasons (it exists once);
//! - [`crate::registry`], the registry side (also `check` and `in`).

pub mod digest;
pub mod select;

use std::path::Path;

use crate::config::OutRequest;
use crate::error::Result;
use crate::protocol::StepOutput;

/// Runs a put. `dir` is the build's working directory (argv[1]); `params.image` is relative to it.
pub async fn put(request: OutRequest, dir: &Path) -> Result<StepOutput> {
    if request.source.git.is_some() {
        crate::gitops::put(request, dir).await
    } else {
        crate::rollout::put(request, dir).await
    }
}

/// `kubernetes.io/change-cause`: which build deployed what, with a link back to it.
pub fn change_cause(image: &str) -> String {
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
        _ => format!("image-rollout {image}"),
    }
}
