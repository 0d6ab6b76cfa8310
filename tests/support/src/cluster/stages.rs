//! kwok Stages: how the fake kubelets move nodes and pods through their lifecycle.
//!
//! kwok runs with `--enable-crds=Stage`, so stages are API objects it watches: that is what lets a
//! test decide at run time that one exact image (say the digest it is about to roll out) fails.
//! The stages are kwok's defaults (`kwok/base-stages.yaml`) plus, for each failing image
//! pattern, the stages of its failure kind (`kwok/pull-fail.yaml`, ...). A failure stage selects
//! pods with a container whose image contains the pattern; the default `pod-ready` and
//! `pod-complete` stages exclude those same pods in their selectors, so a failing pod can never
//! be made Ready, whatever order kwok evaluates stages in.

use super::PodFailure;

pub const CRD: &str = include_str!("../../kwok/stage-crd.yaml");
const BASE: &str = include_str!("../../kwok/base-stages.yaml");
const PULL_FAIL: &str = include_str!("../../kwok/pull-fail.yaml");
const CRASH_LOOP: &str = include_str!("../../kwok/crash-loop.yaml");
const NEVER_READY: &str = include_str!("../../kwok/never-ready.yaml");

/// Pod conditions of a scheduled, started pod that is not ready (a statusTemplate fragment).
const NOT_READY_CONDITIONS: &str = r#"conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: PodReadyToStartContainers
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        status: "False"
        type: ContainersReady"#;

/// The status of a healthy container, with `.` the container spec (a statusTemplate fragment).
const RUNNING_CONTAINER: &str = r#"- image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}"#;

/// Host and pod IPs, as kwok's pod-ready stage assigns them (a statusTemplate fragment).
const POD_NETWORK: &str = r#"{{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}"#;

/// All stages, as one multi-document YAML for `kubectl apply`, given the failing image patterns.
pub fn render(failures: &[(String, PodFailure)]) -> String {
    let mut docs = vec![BASE.replace("@EXCLUDE@", &exclusion(failures))];
    for (i, (pattern, failure)) in failures.iter().enumerate() {
        let (kind, template) = match failure {
            PodFailure::ImagePull => ("pull-fail", PULL_FAIL),
            PodFailure::CrashLoop => ("crash-loop", CRASH_LOOP),
            PodFailure::NeverReady => ("never-ready", NEVER_READY),
        };
        docs.push(
            template
                .replace("@NOT_READY_CONDITIONS@", NOT_READY_CONDITIONS)
                .replace("@RUNNING_CONTAINER@", RUNNING_CONTAINER)
                .replace("@POD_NETWORK@", POD_NETWORK)
                .replace("@CRASH_MESSAGE@", super::CRASH_MESSAGE)
                .replace("@NAME@", &format!("testbed-{i}-{kind}"))
                .replace("@PATTERN@", pattern),
        );
    }
    docs.join("\n---\n")
}

/// The matchExpression (YAML list item) that keeps a default stage off the failing pods.
fn exclusion(failures: &[(String, PodFailure)]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let any: Vec<String> = failures
        .iter()
        .map(|(p, _)| format!("contains(\"{p}\")"))
        .collect();
    format!(
        "    - key: '.spec.containers.[].image | {}'\n      operator: 'NotIn'\n      values:\n      - 'true'\n",
        any.join(" or ")
    )
}

/// Patterns are spliced into jq and Go-template string literals and a YAML single-quoted scalar.
pub fn check_pattern(pattern: &str) {
    assert!(
        !pattern.is_empty() && !pattern.contains(['"', '\'', '\\', '\n', '{', '}']),
        "image pattern {pattern:?} must be non-empty, without quotes, backslashes or braces"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_rendered() {
        let all = render(&[
            ("a".into(), PodFailure::ImagePull),
            ("b".into(), PodFailure::CrashLoop),
            ("c".into(), PodFailure::NeverReady),
        ]);
        // No template uses "@" except as a placeholder delimiter.
        assert!(!all.contains('@'), "{all}");
        assert!(all.contains(r#"contains("a") or contains("b") or contains("c")"#));
    }
}
