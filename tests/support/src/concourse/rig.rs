//! The shipped pipeline, set up as a user sets it up: `pipeline/deploy.yml` as it is, a vars file,
//! the resource image built from the `Dockerfile` and pulled by Concourse's `registry-image` type
//! from a loopback registry, the app's private registry, and the Deployment on a real control
//! plane, deployed as the pipeline's own user: Concourse's web serves https (a CA of the rig's
//! own), and the control plane's API server trusts it as a token issuer with the shipped
//! `pipeline/apiserver-authentication.yaml` (its URL and CA filled in), so no var holds a
//! Kubernetes credential.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tempfile::TempDir;

use super::{Bundle, Concourse};
use crate::cluster::ControlPlane;
use crate::cluster::pki::Pki;
use crate::image;
use crate::registry::{Auth, Credentials, ImageSpec, Layout, Registry, free_port};

/// The names the shipped files use: the pipeline (`-p`), its resource and job. The Actions step's
/// URL names the first two; if they drifted apart, its POST would answer 404.
pub const PIPELINE: &str = "family-assistant";
pub const RESOURCE: &str = "family-assistant-image";
pub const JOB: &str = "deploy";
/// The app: its repository (under the registry's host), Deployment and container.
pub const APP: &str = "family-assistant";
const APP_IMAGE: &str = "werdnum/family-assistant";
/// The tag the app image is pushed to and the pipeline follows.
pub const TAG: &str = "main";
/// The registry user of the app's private registry.
pub const REGISTRY_USER: &str = "ci-reader";

/// Everything the shipped pipeline runs against. Field order is drop order: Concourse goes first,
/// while the registries and the cluster it talks to are still up.
pub struct Rig {
    pub concourse: Concourse,
    pub apps: Registry,
    pub cluster: ControlPlane,
    /// The resource type's image registry (open, as `deploy.yml`'s `resource_types` has no
    /// credentials).
    _resources: Registry,
    pub namespace: String,
    /// `<apps host>/werdnum/family-assistant`, the `image_repository` var.
    pub repository: String,
    /// `https://127.0.0.1:PORT`: Concourse's external URL, the ID tokens' issuer and the base of
    /// the build links (fly and the API are reached on its plain-http port, `concourse.url()`).
    pub external_url: String,
    /// A token of the ServiceAccount of `pipeline/rbac.yaml` (the fallback identity), for steps
    /// the benchmarks run outside Concourse. No var holds it.
    pub service_account_token: String,
    vars: Map<String, Value>,
    dir: TempDir,
}

/// A job build as the ATC's API reports it.
#[derive(Debug, Clone)]
pub struct Build {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Build {
    fn from_json(b: &Value) -> Build {
        Build {
            id: b["id"].as_i64().unwrap_or_default(),
            name: b["name"].as_str().unwrap_or_default().to_owned(),
            status: b["status"].as_str().unwrap_or_default().to_owned(),
            start: b["start_time"].as_i64(),
            end: b["end_time"].as_i64(),
        }
    }

    pub fn finished(&self) -> bool {
        !matches!(self.status.as_str(), "pending" | "started")
    }
}

impl Rig {
    /// Starts Concourse (with up.sh's `settings`), the registries and a control plane, builds and
    /// pushes the resource image, creates the app's Deployment on `<repository>:main` with its
    /// deploying identity, and sets and unpauses the shipped pipeline.
    pub fn start(bundle: &Bundle, settings: &[(&str, &str)]) -> Rig {
        let resources = Registry::start(Auth::Open);
        let apps = Registry::start(Auth::Basic(Credentials::new(
            REGISTRY_USER,
            &secret("registry-password"),
        )));
        let resource_image = resources.repository("image-rollout-resource");
        let dir = tempfile::Builder::new()
            .prefix("pipeline-")
            .tempdir()
            .expect("tempdir");
        // Concourse's web on https: the API server fetches its OIDC discovery and keys only so.
        let pki = Pki::new();
        let web = pki.serving("127.0.0.1");
        let (cert, key) = (dir.path().join("web.crt"), dir.path().join("web.key"));
        std::fs::write(&cert, &web.cert_pem).expect("write web.crt");
        std::fs::write(&key, &web.key_pem).expect("write web.key");
        let port = free_port().port();
        let external_url = format!("https://127.0.0.1:{port}");
        let mut web_args = format!(
            "--tls-bind-port={port} --tls-cert={} --tls-key={} --external-url={external_url}",
            cert.display(),
            key.display()
        );
        let mut settings: Vec<(&str, &str)> = settings.to_vec();
        if let Some(i) = settings.iter().position(|(k, _)| *k == "WEB_EXTRA_ARGS") {
            web_args = format!("{} {web_args}", settings.remove(i).1);
        }
        settings.push(("WEB_EXTRA_ARGS", &web_args));
        let authentication = dir.path().join("apiserver-authentication.json");
        std::fs::write(
            &authentication,
            authentication_config(&external_url, &pki.ca_pem()),
        )
        .expect("write the authentication configuration");
        let apiserver = [format!(
            "--authentication-config={}",
            authentication.display()
        )];
        // The three slow starts overlap: Concourse, the image build, the control plane.
        let (concourse, cluster) = std::thread::scope(|s| {
            let concourse = s.spawn(|| Concourse::up(bundle, &settings));
            let image = s.spawn(|| {
                image::build("0.0.0-e2e", "e2e");
                image::push(&format!("{resource_image}:test"));
            });
            let cluster = ControlPlane::start_with(&apiserver);
            let concourse = concourse.join();
            image.join().expect("the resource image builds and pushes");
            (concourse.expect("Concourse starts"), cluster)
        });

        let namespace = cluster.namespace("ml-bot");
        let repository = apps.repository(APP_IMAGE);
        let service_account_token = cluster.service_account_token(&namespace, "image-rollout");
        cluster.apply(&namespace, include_str!("../../../../pipeline/rbac.yaml"));
        cluster.apply(
            &namespace,
            &deployment(&format!("{repository}:{TAG}"), 2, 0),
        );
        let credentials = apps.credentials().expect("a private registry").clone();
        let vars = json!({
            "resource_image": resource_image,
            "resource_image_tag": "test",
            "image_repository": repository,
            "image_tag": TAG,
            // The loopback registry speaks plain http.
            "registry_insecure": true,
            "registry_username": credentials.username,
            "registry_password": credentials.password,
            "namespace": namespace,
            "deployment": APP,
            "kubernetes_server": cluster.server(),
            "kubernetes_ca": cluster.ca_pem(),
            "webhook_token": secret("webhook"),
        });
        let rig = Rig {
            concourse,
            apps,
            cluster,
            _resources: resources,
            namespace,
            repository,
            external_url,
            service_account_token,
            vars: vars.as_object().expect("an object").clone(),
            dir,
        };
        rig.set_pipeline(&[]);
        rig.concourse.fly_ok(&["unpause-pipeline", "-p", PIPELINE]);
        rig
    }

    /// The value of a var of the test vars file.
    pub fn var(&self, name: &str) -> &str {
        self.vars[name].as_str().unwrap_or_default()
    }

    /// `pipeline/deploy.yml` with `edits` (each `(from, to)`: text that must be there, and what
    /// replaces it) and the test vars with `vars` (`None` removes one), set and unpaused as
    /// `pipeline`.
    pub fn set_variant(
        &self,
        pipeline: &str,
        edits: &[(&str, &str)],
        vars: &[(&str, Option<&str>)],
    ) {
        let mut text = std::fs::read_to_string(image::root().join("pipeline/deploy.yml"))
            .expect("pipeline/deploy.yml");
        for (from, to) in edits {
            assert!(text.contains(from), "deploy.yml has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        let config = self.dir.path().join(format!("{pipeline}.yml"));
        std::fs::write(&config, text).expect("write the pipeline");
        let mut all = self.vars.clone();
        for (name, value) in vars {
            match value {
                Some(value) => all.insert((*name).into(), json!(value)),
                None => all.remove(*name),
            };
        }
        self.fly_set_pipeline(pipeline, &config, all);
        self.concourse.fly_ok(&["unpause-pipeline", "-p", pipeline]);
    }

    /// `fly set-pipeline` of the shipped `pipeline/deploy.yml` with the test vars, `overrides`
    /// replacing some of them.
    pub fn set_pipeline(&self, overrides: &[(&str, &str)]) {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), json!(v));
        }
        self.fly_set_pipeline(PIPELINE, &image::root().join("pipeline/deploy.yml"), vars);
    }

    /// `fly set-pipeline -p pipeline -c config` with `vars` as the vars file.
    fn fly_set_pipeline(&self, pipeline: &str, config: &Path, vars: Map<String, Value>) {
        let file = self.dir.path().join(format!("{pipeline}-vars.yml"));
        // JSON is YAML.
        std::fs::write(&file, Value::Object(vars).to_string()).expect("write the vars file");
        self.concourse.fly_ok(&[
            "set-pipeline",
            "--non-interactive",
            "-p",
            pipeline,
            "-c",
            config.to_str().expect("utf-8"),
            "-l",
            file.to_str().expect("utf-8"),
        ]);
    }

    /// Pushes a new build of the app as `main` and returns its digest.
    pub fn push_app(&self, revision: &str) -> String {
        self.push_app_as(revision, TAG)
    }

    /// Pushes a new build of the app as `tag` (a release: `1.2.0`) and returns its digest.
    pub fn push_app_as(&self, revision: &str, tag: &str) -> String {
        self.apps
            .push(&Layout::image(&ImageSpec::new(revision)), APP_IMAGE, tag)
    }

    /// Runs the `run:` script of `pipeline/github-actions-step.yml` as a GitHub runner would
    /// (bash -e, its `env:` set), with `token` as the secret.
    pub fn actions_step(&self, token: &str) -> Output {
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(actions_script())
            .env("CONCOURSE_URL", self.concourse.url())
            .env("CONCOURSE_WEBHOOK_TOKEN", token)
            .output()
            .expect("run bash")
    }

    /// The deploy job's builds, newest first.
    pub fn builds(&self) -> Vec<Build> {
        self.builds_of(PIPELINE)
    }

    /// The builds of the deploy job of `pipeline`, newest first.
    pub fn builds_of(&self, pipeline: &str) -> Vec<Build> {
        let builds = self.concourse.api(&format!(
            "teams/main/pipelines/{pipeline}/jobs/{JOB}/builds"
        ));
        builds
            .as_array()
            .map(|b| b.iter().map(Build::from_json).collect())
            .unwrap_or_default()
    }

    /// Waits until the deploy job's build `name` has finished.
    pub fn finished_build(&self, name: u32, timeout: Duration) -> Build {
        self.finished_build_of(PIPELINE, name, timeout)
    }

    /// Waits until the deploy job of `pipeline` has finished its build `name`.
    pub fn finished_build_of(&self, pipeline: &str, name: u32, timeout: Duration) -> Build {
        let name = name.to_string();
        self.concourse.wait_for(
            &format!("build {pipeline}/{JOB} #{name} finished"),
            timeout,
            || {
                self.builds_of(pipeline)
                    .into_iter()
                    .find(|b| b.name == name && b.finished())
            },
        )
    }

    /// The resource's versions (digests), newest first.
    pub fn versions(&self) -> Vec<String> {
        self.versions_of(PIPELINE)
            .iter()
            .filter_map(|v| v["digest"].as_str().map(str::to_owned))
            .collect()
    }

    /// The versions (`{digest, tag}`) of the resource of `pipeline`, newest first.
    pub fn versions_of(&self, pipeline: &str) -> Vec<Value> {
        let versions = self.concourse.api(&format!(
            "teams/main/pipelines/{pipeline}/resources/{RESOURCE}/versions"
        ));
        versions
            .as_array()
            .map(|v| v.iter().map(|v| v["version"].clone()).collect())
            .unwrap_or_default()
    }

    /// `fly watch` of the deploy job's build `name`: its whole log, once it has finished.
    pub fn watch(&self, name: u32) -> Output {
        self.watch_of(PIPELINE, name)
    }

    /// `fly watch` of the build `name` of the deploy job of `pipeline`.
    pub fn watch_of(&self, pipeline: &str, name: u32) -> Output {
        self.concourse.fly(&[
            "watch",
            "-j",
            &format!("{pipeline}/{JOB}"),
            "-b",
            &name.to_string(),
        ])
    }

    /// `kubectl get deployment` with a jsonpath.
    pub fn deployment(&self, jsonpath: &str) -> String {
        self.cluster.kubectl_ok(&[
            "-n",
            &self.namespace,
            "get",
            "deployment",
            APP,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
    }

    /// The image the Deployment's pod template runs.
    pub fn deployed_image(&self) -> String {
        self.deployment("{.spec.template.spec.containers[0].image}")
    }

    /// Where the vars file and other rig files live.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// The `run:` script of the shipped Actions step, exactly as GitHub would run it.
pub fn actions_script() -> String {
    let steps: Value =
        serde_saphyr::from_str(include_str!("../../../../pipeline/github-actions-step.yml"))
            .expect("github-actions-step.yml is YAML");
    steps[0]["run"]
        .as_str()
        .expect("the step has a run: script")
        .to_owned()
}

/// The shipped `pipeline/apiserver-authentication.yaml` with this Concourse as the issuer: its
/// external URL and the CA of its certificate, the two values a user fills in.
fn authentication_config(issuer: &str, ca_pem: &str) -> String {
    let mut config: Value = serde_saphyr::from_str(include_str!(
        "../../../../pipeline/apiserver-authentication.yaml"
    ))
    .expect("apiserver-authentication.yaml is YAML");
    let jwt = &mut config["jwt"][0]["issuer"];
    jwt["url"] = json!(issuer);
    jwt["certificateAuthority"] = json!(ca_pem);
    // JSON is YAML, and the API server reads either.
    config.to_string()
}

/// A random secret, so that a leak is recognisable in any output.
fn secret(what: &str) -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("/dev/urandom");
    format!("{what}-{}", hex::encode(bytes))
}

/// The app's Deployment: `replicas` pods that roll one at a time, its container named like the
/// app, each new pod available `min_ready_seconds` after it is ready.
pub fn deployment(image: &str, replicas: u32, min_ready_seconds: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {APP}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {APP}}}}}
  minReadySeconds: {min_ready_seconds}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: {APP}}}}}
    spec:
      containers:
        - name: {APP}
          image: {image}
"#
    )
}
