//! The shipped pipeline files, read the way fly and the resource read them.
//!
//! The real `fly validate-pipeline --strict` (from the Concourse bundle, see `testbed::concourse`)
//! checks the pipeline's structure. What fly cannot check is here: the `source:`/`params:` blocks go
//! through the resource's own config types, which reject unknown keys (so the YAML cannot drift from
//! the code); every var is defined and every defined var used; the job is webhook-driven and serial
//! and rolls the digest it fetched; the Actions step's URL names this pipeline and resource.
//! `tests/concourse.rs` runs all of it under a real Concourse.

use std::collections::BTreeSet;
use std::process::Command;

use image_rollout_resource::config::{InParams, OutParams, Source};
use serde_json::{Map, Value, json};
use testbed::concourse::Bundle;

const DEPLOY: &str = include_str!("../pipeline/deploy.yml");
const VARS: &str = include_str!("../pipeline/vars.example.yml");
const ACTIONS_STEP: &str = include_str!("../pipeline/github-actions-step.yml");
const RBAC: &str = include_str!("../pipeline/rbac.yaml");
const GITOPS: &str = include_str!("../pipeline/gitops.yml");
const GITOPS_VARS: &str = include_str!("../pipeline/gitops-vars.example.yml");
const RBAC_READONLY: &str = include_str!("../pipeline/rbac-readonly.yaml");
const AUTHENTICATION: &str = include_str!("../pipeline/apiserver-authentication.yaml");

/// Keys of vars.example.yml that say where the pipeline is set (team, `-p`), not vars of deploy.yml.
const PLACEMENT_VARS: [&str; 2] = ["concourse_team", "concourse_pipeline"];

const RESOURCE_TYPE: &str = "image-rollout";

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}"))
}

fn vars() -> Map<String, Value> {
    vars_of(VARS)
}

fn vars_of(text: &str) -> Map<String, Value> {
    match yaml(text) {
        Value::Object(vars) => vars,
        other => panic!("vars.example.yml is not a mapping: {other}"),
    }
}

/// The `((name))` references in `text`.
fn var_refs(text: &str) -> impl Iterator<Item = &str> {
    text.split("((")
        .skip(1)
        .filter_map(|rest| rest.split_once("))").map(|(name, _)| name))
}

/// Substitutes `((vars))` as fly does: a value that is only `((name))` becomes the var's value (of
/// any type), a `((name))` inside a longer string is spliced in as text. Records every name used;
/// a name `vars` lacks is an error, as fly would leave it for a credential manager this test has not.
/// A `((source:field))` is a var source's, resolved by Concourse as the step runs: its source must
/// be one of the pipeline's `var_sources` (`sources`), and a placeholder stands in.
fn interpolate(
    value: &Value,
    vars: &Map<String, Value>,
    sources: &BTreeSet<String>,
    used: &mut BTreeSet<String>,
) -> Value {
    let mut lookup = |name: &str| -> Value {
        if let Some((source, _)) = name.split_once(':') {
            assert!(
                sources.contains(source),
                "(({name})): no var source {source}"
            );
            return Value::String(format!("<{name} at run time>"));
        }
        used.insert(name.to_string());
        vars.get(name)
            .unwrap_or_else(|| panic!("(({name})) is not in vars.example.yml"))
            .clone()
    };
    match value {
        Value::String(s) => match s.strip_prefix("((").and_then(|s| s.strip_suffix("))")) {
            Some(name) if !name.contains("((") => lookup(name),
            _ => {
                let mut out = s.clone();
                for name in var_refs(s).map(str::to_string).collect::<Vec<_>>() {
                    let text = match lookup(&name) {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    out = out.replace(&format!("(({name}))"), &text);
                }
                Value::String(out)
            }
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| interpolate(item, vars, sources, used))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate(v, vars, sources, used)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// deploy.yml with vars.example.yml substituted, and the names of the vars it used.
fn pipeline() -> (Value, BTreeSet<String>) {
    pipeline_of(DEPLOY, VARS)
}

/// A pipeline file with its example vars substituted, and the names of the vars it used.
fn pipeline_of(text: &str, vars: &str) -> (Value, BTreeSet<String>) {
    let mut used = BTreeSet::new();
    let mut vars = vars_of(vars);
    // The example's `kubernetes_ca` is a placeholder for the PEM the user pastes, and the resource
    // checks PEM as it reads the request; a real certificate stands in for it.
    if vars.contains_key("kubernetes_ca") {
        let ca = rcgen::generate_simple_self_signed(vec!["kubernetes.example".into()]).unwrap();
        vars.insert("kubernetes_ca".into(), ca.cert.pem().into());
    }
    let raw = yaml(text);
    let sources = list(&raw, "var_sources")
        .iter()
        .map(|s| name(s).to_string())
        .collect();
    let pipeline = interpolate(&raw, &vars, &sources, &mut used);
    (pipeline, used)
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn name(value: &Value) -> &str {
    value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

const HOOKS: [&str; 5] = ["on_success", "on_failure", "on_error", "on_abort", "ensure"];

/// A job's top-level steps: its plan and its hooks.
fn job_steps(job: &Value) -> impl Iterator<Item = &Value> {
    list(job, "plan")
        .iter()
        .chain(HOOKS.into_iter().filter_map(|hook| job.get(hook)))
}

/// The steps inside a step: the bodies of do/in_parallel/try, and its hooks.
fn nested(step: &Map<String, Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    for (key, value) in step {
        match (key.as_str(), value) {
            ("do" | "in_parallel", Value::Array(items)) => out.extend(items),
            ("in_parallel", Value::Object(_)) => out.extend(list(value, "steps")),
            ("try", child) => out.push(child),
            (hook, child) if HOOKS.contains(&hook) => out.push(child),
            _ => {}
        }
    }
    out
}

/// Every step of the pipeline's jobs (hooks and nested steps included), with its job.
fn steps(pipeline: &Value) -> Vec<(&str, &Map<String, Value>)> {
    fn walk<'a>(step: &'a Value, job: &'a str, out: &mut Vec<(&'a str, &'a Map<String, Value>)>) {
        if let Some(map) = step.as_object() {
            out.push((job, map));
            nested(map).into_iter().for_each(|s| walk(s, job, out));
        }
    }
    let mut out = Vec::new();
    for job in list(pipeline, "jobs") {
        for step in job_steps(job) {
            walk(step, name(job), &mut out);
        }
    }
    out
}

/// The resource a get/put step uses, if it is one.
fn step_resource(step: &Map<String, Value>) -> Option<(&'static str, &str)> {
    ["get", "put"].into_iter().find_map(|kind| {
        let step_name = step.get(kind)?.as_str()?;
        let resource = step
            .get("resource")
            .and_then(Value::as_str)
            .unwrap_or(step_name);
        Some((kind, resource))
    })
}

fn rollout_resources(pipeline: &Value) -> Vec<&Value> {
    list(pipeline, "resources")
        .iter()
        .filter(|r| r["type"] == RESOURCE_TYPE)
        .collect()
}

/// `fly validate-pipeline --strict` (unknown keys are errors, as in `set-pipeline`) on `deploy`,
/// with the example vars of `pipeline/<vars>`.
fn fly_validate(deploy: &str, vars: &str) -> Option<std::process::Output> {
    let bundle = Bundle::find("fly validate-pipeline of pipeline/deploy.yml")?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deploy.yml");
    std::fs::write(&file, deploy).unwrap();
    let vars = testbed::image::root().join("pipeline").join(vars);
    Some(
        Command::new(bundle.fly())
            .env("HOME", dir.path())
            .args(["validate-pipeline", "--strict", "-c"])
            .arg(&file)
            .arg("-l")
            .arg(vars)
            .output()
            .expect("run fly"),
    )
}

#[test]
fn fly_validates_the_shipped_pipeline() {
    let Some(out) = fly_validate(DEPLOY, "vars.example.yml") else {
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fly validate-pipeline: {text}");
    assert!(text.contains("looks good"), "{text}");
    assert!(
        !text.contains("WARNING"),
        "fly warns about deploy.yml: {text}"
    );
}

#[test]
fn fly_rejects_a_misspelt_key_and_an_unknown_resource() {
    // Without these, a fly that accepted anything would pass the test above.
    for (from, to, expected) in [
        ("serial: true", "serail: true", "serail"),
        (
            "- put: family-assistant-image",
            "- put: family-assistant-imag",
            "unknown resource",
        ),
    ] {
        assert!(DEPLOY.contains(from), "{from}");
        let Some(out) = fly_validate(&DEPLOY.replace(from, to), "vars.example.yml") else {
            return;
        };
        assert!(!out.status.success(), "fly accepted {to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn vars_example_defines_exactly_the_vars_deploy_yml_uses() {
    // `pipeline()` panics on a var that vars.example.yml lacks; here the other direction: an example
    // var nothing reads is a leftover that misleads whoever fills it in.
    let (_, used) = pipeline();
    let defined: BTreeSet<String> = vars()
        .keys()
        .filter(|k| !PLACEMENT_VARS.contains(&k.as_str()))
        .cloned()
        .collect();
    assert_eq!(defined, used);
}

/// The pipeline's ID token and the cluster's trust agree: the var source's audience is one the
/// AuthenticationConfiguration accepts, its subject is `<team>/<pipeline>`, it outlives the put's
/// timeout, the resource authenticates with it, and each rbac file binds the user that pipeline
/// becomes (`concourse:<team>/<pipeline>`, with the team and `-p` each file is set with).
#[test]
fn the_id_token_of_each_pipeline_is_one_the_cluster_trusts_and_binds() {
    let authn = yaml(AUTHENTICATION);
    let issuer = &list(&authn, "jwt")[0];
    let audiences = issuer["issuer"]["audiences"].as_array().expect("audiences");
    let prefix = issuer["claimMappings"]["username"]["prefix"]
        .as_str()
        .expect("a username prefix");
    let team = vars()["concourse_team"].as_str().unwrap().to_string();
    assert_eq!(
        issuer["claimValidationRules"][0]["requiredValue"],
        team.as_str()
    );
    let pipelines = [
        (
            DEPLOY,
            VARS,
            vars()["concourse_pipeline"].as_str().unwrap().to_string(),
            RBAC,
            "10m",
        ),
        (
            GITOPS,
            GITOPS_VARS,
            "family-assistant-gitops".to_string(),
            RBAC_READONLY,
            "20m",
        ),
    ];
    for (text, vars_text, pipeline_name, rbac, put_takes) in pipelines {
        assert!(
            text.contains(&format!("-p {pipeline_name} ")),
            "set as {pipeline_name}"
        );
        let (pipeline, _) = pipeline_of(text, vars_text);
        let [source] = list(&pipeline, "var_sources") else {
            panic!("one var source");
        };
        assert_eq!(source["type"], "idtoken");
        let config = &source["config"];
        assert_eq!(config["subject_scope"], "pipeline");
        let audience = &config["audience"][0];
        assert!(audiences.contains(audience), "{audience} not accepted");
        let lives = humantime::parse_duration(config["expires_in"].as_str().unwrap()).unwrap();
        assert!(
            lives > humantime::parse_duration(put_takes).unwrap(),
            "{lives:?}"
        );
        let [resource] = rollout_resources(&pipeline)[..] else {
            panic!("one resource");
        };
        // The token is the put's, not the source's: Concourse keys a resource's version history
        // by its evaluated source, and a token new every build would reset it at every check.
        assert!(resource["source"].get("token").is_none());
        let (_, put) = steps(&pipeline)
            .into_iter()
            .find(|(_, s)| s.contains_key("put"))
            .expect("a put");
        assert_eq!(
            put["params"]["token"],
            format!("<{}:token at run time>", name(source)).as_str()
        );
        let user = format!("{prefix}{team}/{pipeline_name}");
        let bindings = rbac
            .split("\n---\n")
            .map(yaml)
            .find(|doc| doc["kind"] == "RoleBinding")
            .expect("a RoleBinding");
        assert!(
            list(&bindings, "subjects")
                .iter()
                .any(|s| s["kind"] == "User" && s["name"] == user.as_str()),
            "{user} is not bound"
        );
    }
}

#[test]
fn sources_and_params_parse_as_the_resource_reads_them() {
    let (pipeline, _) = pipeline();
    let resources = rollout_resources(&pipeline);
    assert!(!resources.is_empty(), "no `{RESOURCE_TYPE}` resource");
    for resource in &resources {
        let source = resource.get("source").cloned().unwrap_or_default();
        if let Err(e) = serde_json::from_value::<Source>(source) {
            panic!("resource `{}`: source: {e}", name(resource));
        }
    }
    let ours: BTreeSet<&str> = resources.iter().map(|r| name(r)).collect();
    let mut puts = 0;
    for (job, step) in steps(&pipeline) {
        let Some((kind, resource)) = step_resource(step) else {
            continue;
        };
        if !ours.contains(resource) {
            continue;
        }
        let params = step.get("params").cloned().unwrap_or(json!({}));
        let parsed = match kind {
            "get" => serde_json::from_value::<InParams>(params).err(),
            _ => {
                puts += 1;
                let get_params = step.get("get_params").cloned().unwrap_or(json!({}));
                serde_json::from_value::<OutParams>(params)
                    .err()
                    .or_else(|| serde_json::from_value::<InParams>(get_params).err())
            }
        };
        if let Some(e) = parsed {
            panic!("job `{job}`: {kind} `{resource}`: {e}");
        }
    }
    assert!(puts > 0, "no put rolls a `{RESOURCE_TYPE}` resource");
}

#[test]
fn deploy_job_is_webhook_driven_serial_and_rolls_the_fetched_digest() {
    let (pipeline, _) = pipeline();
    let [resource] = rollout_resources(&pipeline)[..] else {
        panic!("expected one `{RESOURCE_TYPE}` resource");
    };
    assert!(
        resource["webhook_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "the resource needs a webhook_token for the Actions step to call"
    );
    // Webhook-driven, with the periodic check kept as a safety net (not `never`), and not the 1m
    // default that would poll the registry all day.
    let every = resource["check_every"].as_str().expect("check_every");
    let every = humantime::parse_duration(every).expect("check_every is a duration");
    assert!(every >= std::time::Duration::from_secs(3600), "{every:?}");

    let jobs = list(&pipeline, "jobs");
    let deploy = jobs
        .iter()
        .find(|j| name(j) == "deploy")
        .expect("a `deploy` job");
    assert_eq!(deploy["serial"], true, "two rollouts must not overlap");
    let plan = list(deploy, "plan");
    let get = plan
        .iter()
        .position(|s| s.as_object().and_then(step_resource) == Some(("get", name(resource))))
        .expect("the deploy job gets the image resource");
    assert_eq!(
        plan[get]["trigger"], true,
        "a new digest must start the job"
    );
    let put = plan
        .iter()
        .position(|s| s.as_object().and_then(step_resource) == Some(("put", name(resource))))
        .expect("the deploy job puts the image resource");
    assert!(get < put, "the put must come after the get it deploys");
    // `image` is the directory of the get: the artifact named by `get:` (not its `resource:`).
    assert_eq!(
        plan[put]["params"]["image"], plan[get]["get"],
        "the put must roll to the digest the get fetched"
    );
}

#[test]
fn actions_step_calls_the_webhook_of_the_shipped_resource() {
    let steps = yaml(ACTIONS_STEP);
    let [step] = steps.as_array().map(Vec::as_slice).unwrap_or_default() else {
        panic!("github-actions-step.yml must be a list of one step");
    };
    let run = step["run"].as_str().expect("the step runs a command");
    assert!(
        run.starts_with("curl --fail-with-body ") && run.contains(" -X POST "),
        "{run}"
    );
    let url = run
        .split('"')
        .find(|s| s.contains("/api/v1/"))
        .expect("a quoted webhook URL");
    let (base, path) = url.split_once("/api/v1/").unwrap();
    let (path, query) = path.split_once('?').expect("a query string");
    let segments: Vec<&str> = path.split('/').collect();
    let [
        "teams",
        team,
        "pipelines",
        pipeline_name,
        "resources",
        resource,
        "check",
        "webhook",
    ] = segments[..]
    else {
        panic!("not a check webhook path: {path}");
    };

    let vars = vars();
    assert_eq!(team, vars["concourse_team"]);
    assert_eq!(pipeline_name, vars["concourse_pipeline"]);
    let (pipeline, _) = pipeline();
    assert!(
        rollout_resources(&pipeline)
            .iter()
            .any(|r| name(r) == resource && r.get("webhook_token").is_some()),
        "the webhook names `{resource}`, which is not an `{RESOURCE_TYPE}` resource with a webhook_token in deploy.yml"
    );

    // Concourse reads `webhook_token` (`token` answers 400), here from the secret via env.
    let env = &step["env"];
    let token_var = query
        .strip_prefix("webhook_token=${")
        .and_then(|q| q.strip_suffix('}'))
        .unwrap_or_else(|| panic!("query is not webhook_token=${{ENV}}: {query}"));
    assert_eq!(
        env[token_var], "${{ secrets.CONCOURSE_WEBHOOK_TOKEN }}",
        "the token comes from the repository secret"
    );
    let host_var = base
        .strip_prefix("${")
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_else(|| panic!("the Concourse URL is not an env var: {base}"));
    assert!(
        env[host_var]
            .as_str()
            .is_some_and(|v| v.starts_with("${{ vars.")),
        "the Concourse URL comes from a repository variable: {env}"
    );
}

/// gitops.yml: the same structure checks, its own vars used exactly, its source in GitOps mode
/// (a `git` block, read-only cluster keys) and polled instead of webhook-driven.
#[test]
fn gitops_yml_is_polled_and_parses_in_gitops_mode() {
    let (pipeline, used) = pipeline_of(GITOPS, GITOPS_VARS);
    if let Some(out) = fly_validate(GITOPS, "gitops-vars.example.yml") {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "fly validate-pipeline gitops.yml: {text}"
        );
    }
    let defined: BTreeSet<String> = vars_of(GITOPS_VARS).keys().cloned().collect();
    assert_eq!(defined, used);
    let [resource] = rollout_resources(&pipeline)[..] else {
        panic!("expected one `{RESOURCE_TYPE}` resource");
    };
    assert!(
        resource.get("webhook_token").is_none(),
        "no inbound webhook in GitOps mode"
    );
    assert_eq!(resource["check_every"], "1m");
    let source: Source = serde_json::from_value(resource["source"].clone())
        .unwrap_or_else(|e| panic!("source: {e}"));
    let git = source.git.expect("a git block");
    assert!(git.uri.starts_with("https://") && !git.paths.is_empty());
    assert!(source.deployment.is_some() && source.server.is_some());
    let put = steps(&pipeline)
        .into_iter()
        .find(|(_, s)| s.contains_key("put"))
        .expect("a put");
    let params: OutParams = serde_json::from_value(put.1["params"].clone())
        .unwrap_or_else(|e| panic!("put params: {e}"));
    assert!(params.image.is_some());
}
