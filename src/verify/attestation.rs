//! `source.verify.attestations`: what a verified in-toto statement must say. The signature, the
//! signer and the subject (the digest) are checked by [`super::bundle`]; this reads the
//! predicate, for SLSA provenance in both shapes in use:
//!
//! - v1 (`https://slsa.dev/provenance/v1`), as GitHub's `actions/attest-build-provenance` writes
//!   it: `runDetails.builder.id`, and `buildDefinition.externalParameters.workflow.repository` and
//!   `.ref`;
//! - v0.2 (`https://slsa.dev/provenance/v0.2`), as `cosign attest --type slsaprovenance` takes
//!   it: `builder.id`, and `invocation.configSource.uri` (`git+https://github.com/o/app@refs/heads/main`).
//!
//! ```
//! use image_rollout_resource::config::AttestationPolicy;
//! use image_rollout_resource::verify::attestation::check;
//! let policy = AttestationPolicy {
//!     predicate_type: "https://slsa.dev/provenance/v0.2".into(),
//!     builder_id: None,
//!     source_repository: Some("https://github.com/o/app".into()),
//!     source_ref: Some("refs/heads/main".into()),
//! };
//! let predicate = serde_json::json!({"invocation": {"configSource": {"uri": "git+https://github.com/o/app@refs/heads/main"}}});
//! assert_eq!(check(&policy, "https://slsa.dev/provenance/v0.2", &predicate), Ok(()));
//! ```

use serde_json::Value;

use crate::config::AttestationPolicy;

/// Whether a statement of `predicate_type` with `predicate` meets `policy`; the error names the
/// first field that does not.
pub fn check(
    policy: &AttestationPolicy,
    predicate_type: &str,
    predicate: &Value,
) -> Result<(), String> {
    if predicate_type != policy.predicate_type {
        return Err(format!("its predicate type is `{predicate_type}`"));
    }
    let text = |pointer: &str| predicate.pointer(pointer).and_then(Value::as_str);
    let v02_source = text("/invocation/configSource/uri").map(|uri| {
        let uri = uri.strip_prefix("git+").unwrap_or(uri);
        match uri.rsplit_once('@') {
            Some((repository, reference)) => (repository, Some(reference)),
            None => (uri, None),
        }
    });
    let builder = text("/runDetails/builder/id").or(text("/builder/id"));
    let repository = text("/buildDefinition/externalParameters/workflow/repository")
        .or(v02_source.map(|(repository, _)| repository));
    let reference = text("/buildDefinition/externalParameters/workflow/ref")
        .or(v02_source.and_then(|(_, reference)| reference));
    for (key, expected, found) in [
        ("builder_id", &policy.builder_id, builder),
        ("source_repository", &policy.source_repository, repository),
        ("source_ref", &policy.source_ref, reference),
    ] {
        let Some(expected) = expected else { continue };
        if found != Some(expected.as_str()) {
            return Err(format!(
                "its {} is {}, not {key}'s `{expected}`",
                key.replace('_', " "),
                found.map_or("missing".into(), |f| format!("`{f}`"))
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> AttestationPolicy {
        AttestationPolicy {
            predicate_type: "https://slsa.dev/provenance/v1".into(),
            builder_id: Some("https://github.com/actions/runner/github-hosted".into()),
            source_repository: Some("https://github.com/o/app".into()),
            source_ref: Some("refs/heads/main".into()),
        }
    }

    /// GitHub's attest-build-provenance predicate, abridged.
    fn github() -> Value {
        json!({
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/o/app", "path": ".github/workflows/build.yml"}}
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}}
        })
    }

    #[test]
    fn slsa_v1_as_github_writes_it() {
        let v1 = "https://slsa.dev/provenance/v1";
        assert_eq!(check(&policy(), v1, &github()), Ok(()));
        let mut other = github();
        other["buildDefinition"]["externalParameters"]["workflow"]["repository"] =
            json!("https://github.com/evil/app");
        assert_eq!(
            check(&policy(), v1, &other),
            Err("its source repository is `https://github.com/evil/app`, not source_repository's `https://github.com/o/app`".into())
        );
        let mut branch = github();
        branch["buildDefinition"]["externalParameters"]["workflow"]["ref"] =
            json!("refs/heads/feature");
        assert!(
            check(&policy(), v1, &branch)
                .unwrap_err()
                .contains("source ref is `refs/heads/feature`")
        );
        assert_eq!(
            check(&policy(), "https://slsa.dev/provenance/v0.2", &github()),
            Err("its predicate type is `https://slsa.dev/provenance/v0.2`".into())
        );
    }

    #[test]
    fn slsa_v02_as_cosign_attests_it() {
        let v02 = AttestationPolicy {
            predicate_type: "https://slsa.dev/provenance/v0.2".into(),
            builder_id: Some(
                "https://github.com/o/app/.github/workflows/build.yml@refs/heads/main".into(),
            ),
            ..policy()
        };
        let predicate = json!({
            "builder": {"id": "https://github.com/o/app/.github/workflows/build.yml@refs/heads/main"},
            "invocation": {"configSource": {"uri": "git+https://github.com/o/app@refs/heads/main", "digest": {"sha1": "abc"}}}
        });
        assert_eq!(
            check(&v02, "https://slsa.dev/provenance/v0.2", &predicate),
            Ok(())
        );
        let missing = json!({"builder": {"id": "x"}});
        assert!(
            check(&v02, "https://slsa.dev/provenance/v0.2", &missing)
                .unwrap_err()
                .contains("builder id is `x`")
        );
        let unset = AttestationPolicy {
            builder_id: None,
            ..v02
        };
        assert_eq!(
            check(&unset, "https://slsa.dev/provenance/v0.2", &missing),
            Err("its source repository is missing, not source_repository's `https://github.com/o/app`".into())
        );
    }
}
