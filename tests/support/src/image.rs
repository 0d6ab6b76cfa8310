//! The resource's container image, built from the project's `Dockerfile` without a Docker engine.
//!
//! The Dockerfile's builder base image cannot be pulled here, so the binaries are built the way its
//! builder stage builds them (release, `--locked`, the musl target, from exactly the files the stage
//! `COPY`s) and buildah builds the Dockerfile's final stage around them (`--build-arg BINARIES=…`).
//! The release build (fat LTO) takes minutes from cold: it runs once per test binary, in its own
//! target directory so it never waits on the debug build's lock.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// The steps, each a symbolic link to the one binary the image ships.
pub const STEPS: [&str; 3] = ["check", "in", "out"];
/// check, in and out by the name it runs as (src/steps.rs).
pub const BINARY: &str = "resource";
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The image [`build`] tags (in buildah's storage under `target/buildah`).
pub const TAG: &str = "localhost/image-rollout-resource:test";
const BINARIES_TAG: &str = "localhost/image-rollout-resource-binaries:test";

/// The project's root directory (this crate lives in `tests/support`).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("the project root")
    })
}

/// The release directory holding the static binary, built once per test run from exactly what
/// the Dockerfile's builder stage copies in (so a file the build needs but the Dockerfile leaves
/// out fails here, not in someone's `docker build`).
pub fn release_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target_dir = root().join("target/musl");
        let context = builder_context(&target_dir.join("context"));
        let start = Instant::now();
        let status = Command::new(env!("CARGO"))
            .current_dir(&context)
            .args([
                "build",
                "--release",
                "--locked",
                "--bin",
                BINARY,
                "--target",
                TARGET,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            // The rustc beside this cargo: rustup's proxy would otherwise pick the toolchain a
            // dependency's own `rust-toolchain` file names (ff 0.14 pins one) whenever nothing set
            // RUSTUP_TOOLCHAIN, as `cargo test` through rustup does but a test binary run
            // directly (scripts/test.sh) does not.
            .env("RUSTC", Path::new(env!("CARGO")).with_file_name("rustc"))
            .status()
            .expect("run cargo");
        assert!(
            status.success(),
            "the static release build failed (the target comes from scripts/setup.sh)"
        );
        eprintln!(
            "static build (--release --locked --bin {BINARY} --target {TARGET}): {:.0?}",
            start.elapsed()
        );
        target_dir.join(TARGET).join("release")
    })
}

/// Lays out in `dir` the sources the Dockerfile's builder stage `COPY`s, at the same paths.
fn builder_context(dir: &Path) -> PathBuf {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("read Dockerfile");
    let builder = dockerfile
        .split("\nFROM ")
        .find(|stage| {
            stage
                .lines()
                .next()
                .is_some_and(|l| l.ends_with(" AS builder"))
        })
        .expect("a builder stage");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the build context");
    for line in builder
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (destination, sources) = words.split_last().expect("COPY has a destination");
        for source in sources {
            assert!(
                *destination == "./" || destination == source,
                "testbed::image lays out COPY <path> <same path> or COPY <files> ./ only: {line}"
            );
            let to = dir.join(source);
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
            // -a keeps the files' times, so an unchanged tree does not look changed to cargo.
            let status = Command::new("cp")
                .args([
                    "-a",
                    root().join(source).to_str().expect("utf-8"),
                    to.to_str().expect("utf-8"),
                ])
                .status()
                .expect("cp");
            assert!(
                status.success(),
                "the Dockerfile copies {source}, which does not exist"
            );
        }
    }
    dir.to_path_buf()
}

/// buildah with its own storage under target/, so the tests neither see nor leave images on the
/// machine. vfs: no kernel overlay support needed; chroot isolation: no runc, no namespaces.
pub fn buildah(args: &[&str], stdin: Option<&str>) -> Output {
    let storage = root().join("target/buildah");
    let mut child = Command::new("buildah")
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args(["--storage-driver", "vfs"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("buildah is installed by scripts/setup.sh");
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// stdout of a buildah command that must succeed.
pub fn buildah_ok(args: &[&str]) -> String {
    let out = buildah(args, None);
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Builds the Dockerfile into [`TAG`] around the static binaries of [`release_dir`], with the
/// given `VERSION` and `REVISION` build args.
pub fn build(version: &str, revision: &str) {
    // The previous run's images and containers (an interrupted run's too): vfs keeps full copies.
    buildah_ok(&["rm", "--all"]);
    buildah_ok(&["rmi", "--all", "--force"]);

    // The image the Dockerfile's builder stage would be: binary, links and CA bundle at its paths.
    let staging = tempfile::tempdir().expect("tempdir");
    let out = staging.path().join("out");
    steps_dir(&out);
    let tmp = out.join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    let stage = buildah_ok(&["from", "scratch"]);
    buildah_ok(&["copy", &stage, out.to_str().unwrap(), "/out"]);
    buildah_ok(&["copy", &stage, CA_BUNDLE, CA_BUNDLE]);
    buildah_ok(&["commit", "--rm", &stage, BINARIES_TAG]);

    buildah_ok(&[
        "bud",
        "--isolation",
        "chroot",
        "--build-arg",
        &format!("BINARIES={BINARIES_TAG}"),
        "--build-arg",
        &format!("VERSION={version}"),
        "--build-arg",
        &format!("REVISION={revision}"),
        "--tag",
        TAG,
        "--file",
        root().join("Dockerfile").to_str().unwrap(),
        root().to_str().unwrap(),
    ]);
}

/// `dir/opt/resource` with the binary and `check`, `in` and `out` linked to it, as the image has
/// them.
pub fn steps_dir(dir: &Path) -> PathBuf {
    let steps = dir.join("opt/resource");
    let _ = std::fs::remove_dir_all(&steps);
    std::fs::create_dir_all(&steps).expect("mkdir");
    std::fs::copy(release_dir().join(BINARY), steps.join(BINARY)).expect("copy the binary");
    for step in STEPS {
        std::os::unix::fs::symlink(BINARY, steps.join(step)).expect("symlink");
    }
    steps
}

/// Pushes [`TAG`] to `reference` (`host:port/name:tag`) on a plain-http loopback registry.
pub fn push(reference: &str) {
    buildah_ok(&[
        "push",
        "--quiet",
        "--tls-verify=false",
        TAG,
        &format!("docker://{reference}"),
    ]);
}
