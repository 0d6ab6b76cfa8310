//! `check` beside `crane digest` on the same local registry: requests per check, wall time and
//! peak RSS, as medians over repeated runs and as ratios, for an open and a token registry; and
//! `check` with `source.verify` (the tag's index signed by the real cosign with a key), to show
//! what verification costs per check.
//!
//!     cargo bench --bench registry            # IRR_BENCH_RUNS=30 by default
//!
//! `cargo bench` builds `check` with the release settings. crane comes from scripts/tools.sh;
//! peak RSS is measured by `/usr/bin/time -f %M`, which wraps both tools alike, and requests
//! are counted by the registry's proxy (the token endpoint included).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image_rollout_resource::config::Keyless;
use image_rollout_resource::verify::keyless::KeylessPolicy;
use serde_json::json;
use testbed::cosign::{Cosign, KeyPair};
use testbed::registry::{Auth, Credentials, ImageSpec, Layout, Registry};

const CHECK: &str = env!("CARGO_BIN_EXE_check");
const WARMUP: usize = 3;

/// One run of one tool.
struct Sample {
    wall: Duration,
    rss_kib: u64,
    requests: usize,
}

/// A tool invocation that prints the tag's digest.
struct Tool {
    name: &'static str,
    command: Command,
    stdin: String,
}

fn main() {
    let runs: usize = std::env::var("IRR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let crane = testbed::tools_bin().join("crane");
    assert!(
        crane.exists(),
        "{} is missing: run scripts/tools.sh",
        crane.display()
    );

    println!(
        "check vs crane digest: median of {runs} runs each (after {WARMUP} warm-up runs), multi-arch tag"
    );
    println!(
        "{:<9} {:<14} {:>15} {:>11} {:>14}",
        "registry", "tool", "requests/check", "wall", "peak RSS"
    );
    let cosign = Cosign::new();
    let key = cosign.generate_key_pair("bench");
    let credentials = Credentials::new("bench", "bench-password");
    for (label, auth) in [
        ("open", Auth::Open),
        ("token", Auth::Token(Some(credentials))),
    ] {
        let registry = Registry::start(auth);
        let digest = registry.push(
            &Layout::index(&ImageSpec::new("bench"), true),
            "owner/app",
            "main",
        );
        // Signed on the open registry only: cosign's blob upload through the token registry's
        // proxy fails (`http: ContentLength=241 with Body length 0` on the retried PATCH).
        let signed = registry.credentials().is_none();
        if signed {
            cosign.sign(
                &key,
                &format!("{}@{digest}", registry.repository("owner/app")),
            );
        }
        let config = tempfile::tempdir().expect("tempdir");
        let mut tools = [
            check_tool(&registry, None),
            crane_tool(&registry, &crane, config.path()),
            check_tool(&registry, signed.then_some(&key)),
        ];
        let mut samples: [Vec<Sample>; 3] = Default::default();
        // Interleaved, so that load from elsewhere on the machine hits both tools alike.
        for i in 0..WARMUP + runs {
            for (tool, samples) in tools.iter_mut().zip(&mut samples) {
                let sample = run(&registry, tool, &digest);
                if i >= WARMUP {
                    samples.push(sample);
                }
            }
        }
        let [ours, theirs, verified] = samples.map(|s| summarize(&s));
        let rows = if signed { 3 } else { 2 };
        for (tool, (requests, wall, rss)) in tools.iter().zip([ours, theirs, verified]).take(rows) {
            println!(
                "{label:<9} {:<14} {requests:>15} {:>11} {:>14}",
                tool.name,
                format!("{:.1} ms", wall.as_secs_f64() * 1e3),
                format!("{:.1} MiB", rss as f64 / 1024.0),
            );
        }
        println!(
            "{label:<9} {:<14} {:>15} {:>11} {:>14}",
            "ratio",
            format!("{:.2}", ours.0 as f64 / theirs.0 as f64),
            format!("{:.2}", ours.1.as_secs_f64() / theirs.1.as_secs_f64()),
            format!("{:.2}", ours.2 as f64 / theirs.2 as f64),
        );
        if !signed {
            continue;
        }
        println!(
            "{label:<9} {:<14} {:>15} {:>11} {:>14}",
            "verify adds",
            format!("+{}", verified.0 - ours.0),
            format!(
                "+{:.1} ms",
                (verified.1.as_secs_f64() - ours.1.as_secs_f64()) * 1e3
            ),
            format!("+{:.1} MiB", (verified.2 as f64 - ours.2 as f64) / 1024.0),
        );
    }
    keyless_cost();
}

/// A keyless signature costs the same requests as a key signature (the signature manifest and
/// its payload blob); what it adds is CPU: the chain, the Rekor SET and the entry. Measured
/// in-process on the recorded real signature of tests/fixtures/keyless.
fn keyless_cost() {
    const ROUNDS: u32 = 200;
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/keyless/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fixture("signature-manifest.json")).expect("JSON");
    let annotation = |key: &str| {
        manifest["layers"][0]["annotations"][key]
            .as_str()
            .expect("annotation")
            .to_string()
    };
    let policy = KeylessPolicy::new(&Keyless {
        identity: "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        trusted_root: String::from_utf8(fixture("trusted_root.json")).expect("UTF-8"),
    })
    .expect("trusted root");
    use base64::Engine as _;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(annotation("dev.cosignproject.cosign/signature"))
        .expect("base64");
    let (payload, certificate, chain, bundle) = (
        fixture("payload.json"),
        annotation("dev.sigstore.cosign/certificate"),
        annotation("dev.sigstore.cosign/chain"),
        annotation("dev.sigstore.cosign/bundle"),
    );
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let verdict = policy.accepts(
            &payload,
            &signature,
            &certificate,
            Some(&chain),
            Some(&bundle),
        );
        assert_eq!(verdict, Ok(()));
    }
    println!(
        "keyless: {:.2} ms of CPU per signature (mean of {ROUNDS}, recorded real signature), same requests as a key",
        started.elapsed().as_secs_f64() * 1e3 / f64::from(ROUNDS)
    );
}

/// `check`, with `source.verify` accepting `key`'s signatures if given.
fn check_tool(registry: &Registry, key: Option<&KeyPair>) -> Tool {
    let mut source = json!({
        "repository": registry.repository("owner/app"),
        "tag": "main",
        "insecure": true,
    });
    if let Some(key) = key {
        source["verify"] = json!({"public_keys": [key.public_pem]});
    }
    if let Some(c) = registry.credentials() {
        source["username"] = c.username.clone().into();
        source["password"] = c.password.clone().into();
    }
    Tool {
        name: if key.is_some() {
            "check+verify"
        } else {
            "check"
        },
        command: Command::new(CHECK),
        stdin: json!({ "source": source }).to_string(),
    }
}

/// `crane digest`, with the credentials (if any) in a docker config of its own.
fn crane_tool(registry: &Registry, crane: &std::path::Path, config: &std::path::Path) -> Tool {
    let mut auths = json!({});
    if let Some(c) = registry.credentials() {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        auths[registry.host()] = json!({ "auth": auth });
    }
    std::fs::write(
        config.join("config.json"),
        json!({ "auths": auths }).to_string(),
    )
    .expect("docker config");
    let mut command = Command::new(crane);
    command
        .args(["digest", "--insecure"])
        .arg(format!("{}:main", registry.repository("owner/app")))
        .env("DOCKER_CONFIG", config);
    Tool {
        name: "crane digest",
        command,
        stdin: String::new(),
    }
}

/// Runs `tool` once under `/usr/bin/time` and checks that it found `digest`.
fn run(registry: &Registry, tool: &mut Tool, digest: &str) -> Sample {
    let rss = tempfile::NamedTempFile::new().expect("tempfile");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .arg(tool.command.get_program())
        .args(tool.command.get_args())
        .envs(tool.command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    registry.reset_requests();
    let started = Instant::now();
    let mut child = timed
        .spawn()
        .expect("cannot run /usr/bin/time; install the time package");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(tool.stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("wait");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(digest),
        "{} did not print {digest}:\n{stdout}\n{}",
        tool.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let rss_kib = std::fs::read_to_string(rss.path())
        .expect("time's output")
        .trim()
        .parse()
        .expect("peak RSS in KiB");
    Sample {
        wall,
        rss_kib,
        requests: registry.requests().len(),
    }
}

/// Medians of (requests, wall time, peak RSS in KiB).
fn summarize(samples: &[Sample]) -> (usize, Duration, u64) {
    fn median<T: Ord + Copy>(mut values: Vec<T>) -> T {
        values.sort_unstable();
        values[values.len() / 2]
    }
    (
        median(samples.iter().map(|s| s.requests).collect()),
        median(samples.iter().map(|s| s.wall).collect()),
        median(samples.iter().map(|s| s.rss_kib).collect()),
    )
}
