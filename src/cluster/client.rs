//! The client a put talks to the API server with, and how the API server's refusals read: one
//! line with the server's own message and, for 401 and 403, the fix.

use kube::Client;

use crate::config::WorkloadRef;
use crate::error::{Error, root_cause};

/// A client, the namespace to work in, and the server (for messages).
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub server: String,
}

impl Cluster {
    /// One line for a failed API call on `workload`: "not found" names the namespace to check,
    /// anything else the server's own message.
    pub fn api_error(&self, workload: &WorkloadRef, verb: &str, e: &kube::Error) -> Error {
        if let kube::Error::Api(status) = e
            && status.code == 404
        {
            return Error::Cluster(format!(
                "{workload} not found in namespace {}; check source.namespace and the workload name",
                self.namespace
            ));
        }
        Error::Cluster(format!(
            "{verb} {workload} in namespace {}: {}",
            self.namespace,
            describe(&self.server, e)
        ))
    }
}

/// Renders a kube error as one line: the API's own message for API errors (it names the user,
/// verb and resource for RBAC denials), the innermost cause for transport errors.
pub fn describe(server: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => describe_status(status),
        kube::Error::Auth(_) => format!(
            "authentication failed against {server}: {}; check the token or kubeconfig",
            root_cause(e)
        ),
        _ => format!("cannot reach {server}: {}", root_cause(e)),
    }
}

/// An API server's error status as one line, with the fix for refusals.
pub fn describe_status(status: &kube::core::Status) -> String {
    let mut line = format!(
        "{} (HTTP {} {})",
        status.message, status.code, status.reason
    );
    match status.code {
        401 => line.push_str(&super::token::fix()),
        403 => line.push_str(PERMISSION_FIX),
        _ => {}
    }
    line
}

/// The fix for every permission refusal.
pub const PERMISSION_FIX: &str = "; grant it in the Role bound to this identity (see pipeline/rbac.yaml, or pipeline/rbac-readonly.yaml in GitOps mode)";
