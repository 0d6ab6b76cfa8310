//! `put` (`out`): picks the mode `source` asks for, and nothing else. Where each part lives:
//!
//! - [`crate::rollout`], the cluster mode: patch the workloads, roll back what changed;
//! - [`crate::gitops`], the GitOps mode (`source.git`): commit to the config repository, revert
//!   through Git; it never writes to the cluster;
//! - [`crate::deploy`], what both modes share: the digest to deploy, the workloads, the
//!   change-cause;
//! - [`crate::cluster`], the Kubernetes side both use: the client, the permission review, the
//!   containers to replace, and the wait with its progress lines and fail-fast reasons;
//! - [`crate::git`], the config repository's Git (libgit2 and its transports);
//! - [`crate::registry`], the registry side (also `check` and `in`).

use std::path::Path;

use crate::config::OutRequest;
use crate::error::Result;
use crate::protocol::StepOutput;

/// Runs a put. `dir` is the build's working directory (`argv[1]`); `params.image` is relative to it.
pub async fn put(request: OutRequest, dir: &Path) -> Result<StepOutput> {
    if request.source.git.is_some() {
        crate::gitops::put(request, dir).await
    } else {
        crate::rollout::put(request, dir).await
    }
}
