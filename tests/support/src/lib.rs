//! Real servers on loopback for the integration tests. Nothing here imitates a server the
//! project talks to; fault injection that a real server cannot produce is a thin proxy in front
//! of the real one.

pub mod action;
pub mod charts;
pub mod cluster;
pub mod concourse;
pub mod cosign;
pub mod flux;
pub mod git;
pub mod image;
pub mod measure;
pub mod process;
pub mod registry;
pub mod step;

/// Where `scripts/tools.sh` caches the Go-built tools (etcd, Kubernetes, kwok, crane, cosign,
/// actionlint).
pub fn tools_bin() -> std::path::PathBuf {
    match std::env::var_os("IRR_TOOLS_BIN") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => cache_dir().join("bin"),
    }
}

/// The project's tool cache (`IRR_CACHE`, else `~/.cache/image-rollout-resource`), as
/// `scripts/tools.sh` and `scripts/setup.sh` find it.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("IRR_CACHE") {
        return std::path::PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("image-rollout-resource")
}
