//! `put` (`out`): the mode `source` picks — `rollout` (patch the cluster), or with `source.git`,
//! `gitops` (commit to the config repository and wait, read-only, for the agent). Both resolve
//! the digest, select containers and wait for rollouts with the same code (`rollout::wait`).

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
