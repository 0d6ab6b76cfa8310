//! The demo under a real Concourse: the shipped pipeline set with fly, the Actions step's webhook,
//! and `fly watch` of the deploy job Concourse starts (see `testbed::concourse`).

use std::time::{Duration, Instant};

use testbed::cluster::PodFailure;
use testbed::concourse::Bundle;
use testbed::concourse::rig::{APP, JOB, PIPELINE, Rig};

use super::step;

pub fn run(bundle: &Bundle) {
    let started = Instant::now();
    step(
        "starting Concourse (web + houdini worker), two Distribution registries and a Kubernetes \
         control plane on 127.0.0.1; building the resource image from the Dockerfile and pushing it",
    );
    let rig = Rig::start(bundle, &[]);
    println!("   Concourse {}  (fly target: local)", rig.concourse.url());
    println!("   app image {}:main (private)", rig.repository);
    println!(
        "   deployment/{APP} in namespace {}: {}",
        rig.namespace,
        rig.deployed_image()
    );
    step(&format!(
        "fly set-pipeline -p {PIPELINE} -c pipeline/deploy.yml -l vars.yml; fly unpause-pipeline \
         (done; the vars file is {}/{PIPELINE}-vars.yml, with no cluster credential: the API \
         server trusts Concourse ({}) as a token issuer, and the deploys run as the user \
         concourse:main/{PIPELINE} with each build's ID token)",
        rig.dir().display(),
        rig.external_url
    ));
    print!("{}", rig.concourse.fly_ok(&["pipelines"]));

    let mut build = 0;
    for (revision, crashes) in [("v1", false), ("v2", false), ("v3", true)] {
        build += 1;
        let digest = rig.push_app(revision);
        if crashes {
            // kwok plays the kubelets: this digest's containers crash the way a real one would.
            rig.cluster.fail_images(
                &format!("{}@{digest}", rig.repository),
                PodFailure::CrashLoop,
            );
        }
        step(&format!(
            "GitHub Actions pushes {revision}{} as main ({digest}), then runs \
             pipeline/github-actions-step.yml",
            if crashes { " (crashes on start)" } else { "" }
        ));
        let out = rig.actions_step(rig.var("webhook_token"));
        println!(
            "   webhook -> {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
        rig.concourse
            .wait_for("the deploy job starts", Duration::from_secs(60), || {
                rig.builds()
                    .iter()
                    .any(|b| b.name == build.to_string())
                    .then_some(())
            });
        step(&format!("fly watch -j {PIPELINE}/{JOB} -b {build}"));
        let status = rig
            .concourse
            .fly_command(&[
                "watch",
                "-j",
                &format!("{PIPELINE}/{JOB}"),
                "-b",
                &build.to_string(),
            ])
            .status()
            .expect("run fly watch");
        println!(
            "   -> the job {}; the Deployment runs {}",
            if status.success() {
                "succeeded"
            } else {
                "failed"
            },
            rig.deployed_image()
        );
    }

    step("fly builds; kubectl rollout history");
    print!(
        "{}",
        rig.concourse
            .fly_ok(&["builds", "-j", &format!("{PIPELINE}/{JOB}")])
    );
    print!(
        "{}",
        rig.cluster.kubectl_ok(&[
            "-n",
            &rig.namespace,
            "rollout",
            "history",
            &format!("deploy/{APP}")
        ])
    );
    step(&format!(
        "tearing down: down.sh, registries, control plane (whole demo: {}s)",
        started.elapsed().as_secs()
    ));
}
