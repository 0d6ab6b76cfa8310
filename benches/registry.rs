//! `check` beside `crane digest`, and `in` beside `crane manifest` + `crane config` (what `in`
//! fetches), on the same local registry: requests, wall time (split into the registry's share
//! and the tool's own) and peak RSS, as medians over
//! interleaved runs and as ratios, for an open, a token and a TLS registry with its own CA; and
//! `check` with `source.verify` (the tag's index signed by the real cosign with a key) on the
//! open and token registries, and signed by cosign v3 as a Sigstore bundle on the open registry
//! (the referrers tag schema) and on one with the referrers API, and the CPU of one keyless verification, to show what
//! verification costs per check. On the token registry also `check` as the later checks of a
//! Concourse check container run it, with the registry's challenge remembered (see [`Tmp`]).
//!
//!     cargo bench --bench registry            # IRR_BENCH_RUNS=30 by default
//!
//! `cargo bench` builds `check` and `in` with the release settings (`IRR_BENCH_BIN=<dir>` runs
//! the `check` and `in` in that directory instead, e.g. an older build). crane comes from
//! scripts/tools.sh. Each run runs every process twice: once spawned directly, for the wall time
//! and the requests, and once under `/usr/bin/time -f %M` for the peak RSS (the wrapper's own fork
//! and exec would add 1.0 ms to our wall time and 1.5 ms to crane's). Requests are counted and
//! timed by the registry's proxy (the token endpoint included): its
//! time from each request's arrival to its answer is the `server` share of the wall time, the
//! same for any client; the rest, `own`, is the tool's process, client and loopback. A crane
//! pair counts the sum of its wall times and requests and the larger peak RSS. Before the first
//! run every binary compared is written back and dropped from the page cache
//! (`testbed::measure::drop_from_page_cache`), so both tools map their code from the same state.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image_rollout_resource::config::Keyless;
use image_rollout_resource::verify::keyless::KeylessPolicy;
use serde_json::{Value, json};
use testbed::cosign::{Cosign, KeyPair};
use testbed::registry::{Auth, Credentials, ImageSpec, Layout, Registry};

const WARMUP: usize = 3;
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One run of one tool, or the medians of many.
#[derive(Clone, Copy)]
struct Sample {
    requests: usize,
    wall: Duration,
    /// The part of `wall` the registry's proxy spent answering (registry and token server).
    server: Duration,
    /// `wall` without `server`: the process, its client and the loopback.
    own: Duration,
    rss_kib: u64,
}

/// One process of a tool: the command, its stdin, and what its stdout must contain.
struct Step {
    command: Command,
    stdin: String,
    expect: String,
    /// Directories made afresh and empty before each run, untimed. `in`'s (its argument):
    /// Concourse gives every get step a new empty volume; reusing one directory would time the
    /// truncation of the previous run's five files instead, which on the development machine's
    /// ext4 (mounted with `discard`, other builds writing) added a median 5 ms to `in`. And the
    /// `TMPDIR` of a step that runs as in a new container (see [`Tmp`]).
    fresh: Vec<PathBuf>,
}

/// The `TMPDIR` of one of our steps, where a check remembers the registry's auth challenge
/// (src/registry/remembered.rs): new and empty each run, as for the first check in a new check
/// container (and for every get), or kept across runs, as for the later checks Concourse runs in
/// the same container (for 5 minutes to an hour).
enum Tmp {
    Fresh(PathBuf),
    Kept(PathBuf),
}

/// The name of the check that runs as a container's later checks do.
const LATER: &str = "check, later in container";

/// A tool: one process, or (crane's answer to `in`) two run one after the other.
struct Tool {
    name: &'static str,
    steps: Vec<Step>,
}

/// The check of an image signed only by a Sigstore bundle (cosign v3).
const BUNDLE: &str = "check+verify, bundle";

fn main() {
    let runs: usize = std::env::var("IRR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let ours = |name: &str| match std::env::var_os("IRR_BENCH_BIN") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(match name {
            "check" => env!("CARGO_BIN_EXE_check"),
            _ => env!("CARGO_BIN_EXE_in"),
        }),
    };
    let crane = testbed::tools_bin().join("crane");
    assert!(
        crane.exists(),
        "{} is missing: run scripts/tools.sh",
        crane.display()
    );

    // Both tools' binaries start from the same page-cache state (see drop_from_page_cache).
    for binary in [ours("check"), ours("in"), crane.clone()] {
        testbed::measure::drop_from_page_cache(&binary);
    }
    println!(
        "median of {runs} interleaved runs each (after {WARMUP} warm-up runs), multi-arch tag, binaries read back from disk; {} and {}",
        ours("check").display(),
        ours("in").display()
    );
    let header = ["requests", "wall", "server", "own", "peak RSS"].map(String::from);
    row("registry", "tool", header);
    let cosign = Cosign::new();
    let key = cosign.generate_key_pair("bench");
    let credentials = Credentials::new("bench", "bench-password");
    let cosign3 = Cosign::v3();
    let key3 = cosign3.generate_key_pair("bench");
    let registries = [
        ("open", Registry::start(Auth::Open)),
        ("token", Registry::start(Auth::Token(Some(credentials)))),
        ("tls", Registry::start_tls(Auth::Open)),
        ("referrers", Registry::start_referrers()),
    ];
    for (label, registry) in &registries {
        let digest = registry.push(
            &Layout::index(&ImageSpec::new("bench"), true),
            "owner/app",
            "main",
        );
        let scratch = tempfile::tempdir().expect("tempdir");
        let crane = Crane::new(registry, &crane, scratch.path());
        let source = source(registry);
        let fresh = |name: &str| Tmp::Fresh(scratch.path().join(name));
        let check = |name, tmp| Tool {
            name,
            steps: vec![ours_step(&ours("check"), None, &source, None, &digest, tmp)],
        };
        let mut checks = vec![
            check("check", fresh("check")),
            crane.tool("crane digest", &[&["digest"]], ":main", &digest),
        ];
        // Where the later check pays less: a registry that asks for credentials. Its warm-up runs
        // leave the challenge remembered.
        if registry.credentials().is_some() {
            checks.push(check(LATER, Tmp::Kept(scratch.path().join("kept"))));
        }
        // What the system bundle costs when it is needed (a public registry): the same check
        // trusting the CA only through SSL_CERT_FILE = the system bundle plus the CA.
        if let Some(ca) = registry.ca_pem() {
            let system = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
            let bundle = scratch.path().join("bundle.pem");
            std::fs::write(&bundle, format!("{system}\n{ca}")).expect("bundle");
            let mut without = source.clone();
            without["ca_certs"] = json!([]);
            let mut step = ours_step(
                &ours("check"),
                None,
                &without,
                None,
                &digest,
                fresh("bundle"),
            );
            step.command.env("SSL_CERT_FILE", &bundle);
            checks.push(Tool {
                name: "check, CA via bundle",
                steps: vec![step],
            });
        }
        // A verified check on the plain-http registries (cosign's loopback flags are for plain
        // http), its signature pushed by cosign through the proxy.
        if registry.ca_pem().is_none() {
            cosign.login(registry);
            cosign.sign(
                &key,
                &format!("{}@{digest}", registry.repository("owner/app")),
            );
            checks.push(Tool {
                name: "check+verify",
                steps: vec![ours_step(
                    &ours("check"),
                    None,
                    &verifying(&source, &key),
                    None,
                    &digest,
                    fresh("verify"),
                )],
            });
            // The same image in another repository, signed by cosign v3 as a Sigstore bundle
            // (the referrers API where the registry has it, else the tag schema), no `.sig` tag.
            if registry.credentials().is_none() {
                registry.push(
                    &Layout::index(&ImageSpec::new("bench"), true),
                    "owner/bundled",
                    "main",
                );
                cosign3.sign_bundle(
                    &key3,
                    &format!("{}@{digest}", registry.repository("owner/bundled")),
                );
                let mut bundled = verifying(&source, &key3);
                bundled["repository"] = json!(registry.repository("owner/bundled"));
                checks.push(Tool {
                    name: BUNDLE,
                    steps: vec![ours_step(
                        &ours("check"),
                        None,
                        &bundled,
                        None,
                        &digest,
                        fresh("bundle"),
                    )],
                });
            }
        }
        let groups = [
            checks,
            vec![
                Tool {
                    name: "in",
                    steps: vec![ours_step(
                        &ours("in"),
                        Some(&scratch.path().join("in")),
                        &source,
                        Some(&digest),
                        &digest,
                        fresh("in-tmp"),
                    )],
                },
                crane.tool(
                    "crane manifest + config",
                    &[&["manifest"], &["config", "--platform", "linux/amd64"]],
                    &format!("@{digest}"),
                    "",
                ),
            ],
        ];
        for mut group in groups {
            let mut samples: Vec<Vec<Sample>> = group.iter().map(|_| Vec::new()).collect();
            // Interleaved, so that load from elsewhere on the machine hits all tools alike.
            for i in 0..WARMUP + runs {
                for (tool, samples) in group.iter_mut().zip(&mut samples) {
                    let sample = run(registry, tool);
                    if i >= WARMUP {
                        samples.push(sample);
                    }
                }
            }
            let summaries: Vec<_> = samples.iter().map(|s| summarize(s)).collect();
            let (a, b) = (summaries[0], summaries[1]);
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            for (tool, s) in group.iter().zip(&summaries) {
                let rss = format!("{:.1} MiB", s.rss_kib as f64 / 1024.0);
                let requests = s.requests.to_string();
                row(
                    label,
                    tool.name,
                    [requests, ms(s.wall), ms(s.server), ms(s.own), rss],
                );
            }
            row(label, "ratio", ratios(&a, &b));
            if let Some(later) = group.iter().position(|t| t.name == LATER) {
                row(label, "ratio, later", ratios(&summaries[later], &b));
            }
            for (i, tool) in group.iter().enumerate().skip(2) {
                if tool.name != "check+verify" && tool.name != BUNDLE {
                    continue;
                }
                let verified = &summaries[i];
                let more = |f: fn(&Sample) -> Duration| {
                    let ms = (f(verified).as_secs_f64() - f(&a).as_secs_f64()) * 1e3;
                    format!("{ms:+.1} ms")
                };
                let rss = (verified.rss_kib as f64 - a.rss_kib as f64) / 1024.0;
                let added = [
                    format!("{:+}", verified.requests as i64 - a.requests as i64),
                    more(|s| s.wall),
                    more(|s| s.server),
                    more(|s| s.own),
                    format!("{rss:+.1} MiB"),
                ];
                let what = if tool.name == BUNDLE {
                    "bundle verify adds"
                } else {
                    "verify adds"
                };
                row(label, what, added);
            }
        }
    }
    keyless_cost();
    against_registry_image_resource(runs, &ours("check"));
}

/// Our `check` beside registry-image-resource's (the check of Concourse's own `registry-image`
/// type, v1.18.0, from the Concourse bundle), on a repository of 300 release tags and `main`, on
/// the open and the token registry: following `main`, and following releases with
/// `semver_constraint` on a first check (no version yet) and on the periodic check Concourse
/// repeats all day (from the newest version).
fn against_registry_image_resource(runs: usize, ours: &Path) {
    let Some(bundle) = testbed::concourse::Bundle::find("the registry-image-resource benchmark")
    else {
        return;
    };
    let theirs = bundle.registry_image_check();
    testbed::measure::drop_from_page_cache(&theirs);
    println!(
        "\nregistry-image-resource's check ({}) on 300 release tags + main: median of {runs} interleaved runs",
        theirs.display()
    );
    let header = ["requests", "wall", "server", "own", "peak RSS"].map(String::from);
    row("registry", "tool", header);
    let registries = [
        ("open", Registry::start(Auth::Open)),
        (
            "token",
            Registry::start(Auth::Token(Some(Credentials::new(
                "bench",
                "bench-password",
            )))),
        ),
    ];
    for (label, registry) in &registries {
        let base = registry.push(
            &Layout::image(&ImageSpec::new("bench")),
            "owner/app",
            "main",
        );
        let mut newest = String::new();
        for major in 0..=3 {
            for minor in 0..=14 {
                for patch in 0..=4 {
                    newest = registry.tag(
                        "owner/app",
                        &base,
                        &format!("{major}.{minor}.{patch}"),
                        true,
                    );
                }
            }
        }
        let scratch = tempfile::tempdir().expect("tempdir");
        let semver = {
            let mut source = source(registry);
            source.as_object_mut().expect("an object").remove("tag");
            source["semver_constraint"] = json!(">= 1.0, < 4");
            source
        };
        let cursor = json!({"tag": "3.14.4", "digest": newest});
        let cases = [
            ("tag: main", source(registry), None, base.clone()),
            (
                "semver_constraint, first check",
                semver.clone(),
                None,
                newest.clone(),
            ),
            (
                "semver_constraint, periodic check (from the newest)",
                semver,
                Some(cursor),
                newest.clone(),
            ),
        ];
        for (case, source, version, expect) in cases {
            let mut request = json!({"source": source});
            if let Some(version) = version {
                request["version"] = version;
            }
            let mut step = ours_step(
                ours,
                None,
                &source,
                None,
                &expect,
                Tmp::Fresh(scratch.path().join("tmp")),
            );
            step.stdin = request.to_string();
            let mut group = [
                Tool {
                    name: "check",
                    steps: vec![step],
                },
                Tool {
                    name: "registry-image-resource",
                    steps: vec![Step {
                        command: Command::new(&theirs),
                        stdin: request.to_string(),
                        expect,
                        fresh: Vec::new(),
                    }],
                },
            ];
            let mut samples = [Vec::new(), Vec::new()];
            for i in 0..WARMUP + runs {
                for (tool, samples) in group.iter_mut().zip(&mut samples) {
                    let sample = run(registry, tool);
                    if i >= WARMUP {
                        samples.push(sample);
                    }
                }
            }
            let [a, b] = samples.map(|s| summarize(&s));
            println!("  {case}");
            for (tool, s) in group.iter().zip([&a, &b]) {
                let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
                let rss = format!("{:.1} MiB", s.rss_kib as f64 / 1024.0);
                row(
                    label,
                    tool.name,
                    [
                        s.requests.to_string(),
                        ms(s.wall),
                        ms(s.server),
                        ms(s.own),
                        rss,
                    ],
                );
            }
            row(label, "ratio", ratios(&a, &b));
        }
    }
}

/// Each figure of `a` as a multiple of `b`'s.
fn ratios(a: &Sample, b: &Sample) -> [String; 5] {
    let ratio = |x: f64, y: f64| format!("{:.2}", x / y);
    let time = |f: fn(&Sample) -> Duration| ratio(f(a).as_secs_f64(), f(b).as_secs_f64());
    [
        ratio(a.requests as f64, b.requests as f64),
        time(|s| s.wall),
        time(|s| s.server),
        time(|s| s.own),
        ratio(a.rss_kib as f64, b.rss_kib as f64),
    ]
}

/// One line of the table.
fn row(label: &str, tool: &str, [requests, wall, server, own, rss]: [String; 5]) {
    println!("{label:<9} {tool:<26} {requests:>9} {wall:>10} {server:>10} {own:>10} {rss:>10}");
}

/// `source` with `verify` accepting `key`'s signatures.
fn verifying(source: &Value, key: &KeyPair) -> Value {
    let mut source = source.clone();
    source["verify"] = json!({"public_keys": [key.public_pem]});
    source
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
    let (payload, certificate, bundle) = (
        fixture("payload.json"),
        annotation("dev.sigstore.cosign/certificate"),
        annotation("dev.sigstore.cosign/bundle"),
    );
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let verdict = policy.accepts(&payload, &signature, &certificate, Some(&bundle));
        assert_eq!(verdict, Ok(()));
    }
    println!(
        "keyless: {:.2} ms of CPU per signature (mean of {ROUNDS}, recorded real signature), same requests as a key",
        started.elapsed().as_secs_f64() * 1e3 / f64::from(ROUNDS)
    );
}

/// `source:` for `check` and `in`: plain http for the open and token registries (`insecure`),
/// https with the registry's CA in `ca_certs` for the TLS one.
fn source(registry: &Registry) -> Value {
    let mut source = json!({
        "repository": registry.repository("owner/app"),
        "tag": "main",
        "insecure": registry.ca_pem().is_none(),
    });
    if let Some(ca) = registry.ca_pem() {
        source["ca_certs"] = json!([ca]);
    }
    if let Some(c) = registry.credentials() {
        source["username"] = c.username.clone().into();
        source["password"] = c.password.clone().into();
    }
    source
}

fn ours_step(
    binary: &Path,
    dir: Option<&Path>,
    source: &Value,
    version: Option<&str>,
    expect: &str,
    tmp: Tmp,
) -> Step {
    let mut command = Command::new(binary);
    command.args(dir);
    let mut fresh: Vec<PathBuf> = dir.map(Path::to_path_buf).into_iter().collect();
    match tmp {
        Tmp::Fresh(path) => {
            command.env("TMPDIR", &path);
            fresh.push(path);
        }
        Tmp::Kept(path) => {
            std::fs::create_dir_all(&path).expect("the kept TMPDIR");
            command.env("TMPDIR", &path);
        }
    }
    let mut request = json!({ "source": source });
    if let Some(digest) = version {
        request["version"] = json!({ "digest": digest });
    }
    Step {
        command,
        stdin: request.to_string(),
        expect: expect.into(),
        fresh,
    }
}

/// crane, set up for one registry: credentials (if any) in a docker config of its own; for the
/// TLS registry its CA as `SSL_CERT_FILE` (crane's way to trust a CA), else `--insecure`.
struct Crane {
    binary: PathBuf,
    config: PathBuf,
    ca_file: Option<PathBuf>,
    repository: String,
}

impl Crane {
    fn new(registry: &Registry, binary: &Path, scratch: &Path) -> Crane {
        let mut auths = json!({});
        if let Some(c) = registry.credentials() {
            use base64::Engine as _;
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            auths[registry.host()] = json!({ "auth": auth });
        }
        std::fs::write(
            scratch.join("config.json"),
            json!({ "auths": auths }).to_string(),
        )
        .expect("docker config");
        let ca_file = registry.ca_pem().map(|ca| {
            let path = scratch.join("ca.pem");
            std::fs::write(&path, ca).expect("CA file");
            path
        });
        Crane {
            binary: binary.into(),
            config: scratch.into(),
            ca_file,
            repository: registry.repository("owner/app"),
        }
    }

    /// Runs `crane <args…> <repository><suffix>` for each of `commands`.
    fn tool(&self, name: &'static str, commands: &[&[&str]], suffix: &str, expect: &str) -> Tool {
        let steps = commands
            .iter()
            .map(|args| {
                let mut command = Command::new(&self.binary);
                command.args(*args);
                match &self.ca_file {
                    Some(ca) => command.env("SSL_CERT_FILE", ca),
                    None => command.arg("--insecure"),
                };
                command
                    .arg(format!("{}{suffix}", self.repository))
                    .env("DOCKER_CONFIG", &self.config);
                Step {
                    command,
                    stdin: String::new(),
                    expect: expect.into(),
                    fresh: Vec::new(),
                }
            })
            .collect();
        Tool { name, steps }
    }
}

/// Runs each step of `tool` twice, checking its output: spawned directly for the wall time, the
/// requests and the registry's share, then under `/usr/bin/time` for the peak RSS.
fn run(registry: &Registry, tool: &mut Tool) -> Sample {
    registry.reset_requests();
    let mut wall = Duration::ZERO;
    for step in &mut tool.steps {
        wall += run_step(tool.name, step, Measure::Wall);
    }
    let requests = registry.requests().len();
    let server = registry.answering();
    let mut rss_kib = 0;
    for step in &mut tool.steps {
        let rss = tempfile::NamedTempFile::new().expect("tempfile");
        run_step(tool.name, step, Measure::PeakRss(rss.path()));
        let kib = std::fs::read_to_string(rss.path())
            .expect("time's output")
            .trim()
            .parse()
            .expect("peak RSS in KiB");
        rss_kib = rss_kib.max(kib);
    }
    Sample {
        requests,
        wall,
        server,
        own: wall.saturating_sub(server),
        rss_kib,
    }
}

/// What one run of a step measures.
enum Measure<'a> {
    /// The time from spawning the process to its exit.
    Wall,
    /// The peak RSS, written by `/usr/bin/time` to this file.
    PeakRss(&'a Path),
}

/// Runs `step` once (in fresh directories) and returns its wall time.
fn run_step(name: &str, step: &mut Step, measure: Measure) -> Duration {
    for dir in &step.fresh {
        if dir.exists() {
            std::fs::remove_dir_all(dir).expect("remove the last run's directory");
        }
        std::fs::create_dir(dir).expect("a fresh directory");
    }
    let mut command = match measure {
        Measure::Wall => Command::new(step.command.get_program()),
        Measure::PeakRss(output) => {
            let mut timed = Command::new("/usr/bin/time");
            timed
                .args(["-f", "%M", "-o"])
                .arg(output)
                .arg(step.command.get_program());
            timed
        }
    };
    command
        .args(step.command.get_args())
        .envs(step.command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run {command:?} (/usr/bin/time is the time package): {e}")
    });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(step.stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("wait");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&step.expect),
        "{name} did not print {:?}:\n{stdout}\n{}",
        step.expect,
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

/// The median of each figure on its own.
fn summarize(samples: &[Sample]) -> Sample {
    fn median<T: Ord + Copy>(samples: &[Sample], figure: impl Fn(&Sample) -> T) -> T {
        let mut values: Vec<T> = samples.iter().map(figure).collect();
        values.sort_unstable();
        values[values.len() / 2]
    }
    Sample {
        requests: median(samples, |s| s.requests),
        wall: median(samples, |s| s.wall),
        server: median(samples, |s| s.server),
        own: median(samples, |s| s.own),
        rss_kib: median(samples, |s| s.rss_kib),
    }
}
