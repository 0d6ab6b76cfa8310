//! image-rollout-resource: a Concourse resource type that follows an OCI image tag by digest
//! (`check`, `in`) and rolls Kubernetes workloads to exactly that digest (`out`), either by
//! patching them or by committing the digest to a config repository for a GitOps agent; [`mod@put`]
//! says where each part of `out` lives.
//!
//! Each binary in `bin/` is one call into [`steps`]: [`protocol::run`] around one step function.
//! The same binary is also a GitHub Action ([`action`], `resource action`): the GitOps mode run
//! from the app's own workflow.

pub mod abort;
pub mod action;
pub mod check;
pub mod cluster;
pub mod config;
pub mod deploy;
pub mod error;
pub mod get;
pub mod git;
pub mod gitops;
pub mod http;
pub mod pem;
pub mod policy;
pub mod protocol;
pub mod put;
pub mod registry;
pub mod rollout;
pub mod steps;
pub mod verify;

/// The version the steps report on their first stderr line (and the image's label).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use check::check;
pub use config::{CheckRequest, Digest, InRequest, OutRequest, Source, Version};
pub use error::{Error, Result};
pub use get::get;
pub use put::put;
