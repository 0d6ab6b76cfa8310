//! The container image: the Dockerfile's static binary (check, in and out by the name it runs as),
//! its size promise, and the image itself.
//!
//! There is no Docker engine here: `testbed::image` builds the binaries the way the Dockerfile's
//! builder stage does and the Dockerfile's final stage around them with buildah.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use testbed::image::{
    self, BINARY, CA_BUNDLE, STEPS, TAG, buildah, buildah_ok, release_dir, steps_dir,
};
use testbed::step::{self, StepResult};

/// The promise: the whole image (the binary and the CA certificates) in 16 MB, counted as
/// `docker images` and buildah count (10^6 bytes). 6.84 MB before the GitOps client (libgit2)
/// came in, 9.2 MB before the Sigstore verifier (11 MB was the line until then; the Sigstore
/// project's own verifier of bundles was worth a few MB, docs/design.md).
const MAX_IMAGE_BYTES: u64 = 16_000_000;
/// What the binaries report and the release labels the image with.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()).into()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The size of the section called `name` (from the section headers, which `strip` keeps).
fn section_size(elf: &[u8], name: &str) -> Option<u64> {
    let (headers, entry, count) = (
        u64_at(elf, 0x28) as usize,
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
    );
    let header = |i: usize| &elf[headers + i * entry..headers + (i + 1) * entry];
    let names = u64_at(header(u16_at(elf, 0x3e)), 0x18) as usize;
    (0..count).map(header).find_map(|h| {
        let at = names + u32::from_le_bytes(h[..4].try_into().unwrap()) as usize;
        let end = at + elf[at..].iter().position(|&b| b == 0)?;
        (&elf[at..end] == name.as_bytes()).then(|| u64_at(h, 0x20))
    })
}

/// Why an x86-64 ELF executable would need anything at run time: a program interpreter (the
/// dynamic loader) or shared libraries (`DT_NEEDED`). Empty for a static(-pie) binary.
fn dynamic_needs(elf: &[u8]) -> Vec<String> {
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF"
    );
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20) as usize,
        u16_at(elf, 0x36),
        u16_at(elf, 0x38),
    );
    let mut needs = Vec::new();
    for header in (0..phnum).map(|i| &elf[phoff + i * phentsize..][..phentsize]) {
        let (offset, size) = (u64_at(header, 8) as usize, u64_at(header, 32) as usize);
        match u32::from_le_bytes(header[..4].try_into().unwrap()) {
            PT_INTERP => needs.push(format!(
                "interpreter {}",
                String::from_utf8_lossy(&elf[offset..offset + size]).trim_end_matches('\0')
            )),
            PT_DYNAMIC => {
                let needed = elf[offset..offset + size]
                    .chunks_exact(16)
                    .map(|entry| u64_at(entry, 0))
                    .take_while(|&tag| tag != 0)
                    .filter(|&tag| tag == DT_NEEDED)
                    .count();
                if needed > 0 {
                    needs.push(format!("{needed} shared libraries"));
                }
            }
            _ => {}
        }
    }
    needs
}

#[test]
fn the_elf_check_sees_a_dynamic_binary() {
    // The same check on this test's own (glibc, dynamically linked) executable must complain, or a
    // passing static check would prove nothing.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let needs = dynamic_needs(&me);
    assert!(
        needs.iter().any(|n| n.starts_with("interpreter /")),
        "{needs:?}"
    );
    assert!(
        needs.iter().any(|n| n.ends_with("shared libraries")),
        "{needs:?}"
    );
}

#[test]
fn the_static_binary_fits_the_size_promise_and_speaks_the_protocol() {
    let path = release_dir().join(BINARY);
    let elf = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        dynamic_needs(&elf),
        Vec::<String>::new(),
        "{BINARY} is not static"
    );
    // link/cold-text.ld moved out's code out of check's way (build.rs passes it to the
    // linker). Most of out's code is there: less means its name patterns stopped matching.
    let cold = section_size(&elf, ".text.cold").unwrap_or(0);
    eprintln!("out-only code (.text.cold): {cold} bytes");
    assert!(
        cold > 2_000_000,
        ".text.cold is {cold} bytes: link/cold-text.ld was not used or matches too little"
    );
    // build.rs also packs the relocations (RELR): a few KB where RELA took 364 KB.
    let (relr, rela) = (
        section_size(&elf, ".relr.dyn").unwrap_or(0),
        section_size(&elf, ".rela.dyn").unwrap_or(0),
    );
    eprintln!("relocations: .relr.dyn {relr} bytes, .rela.dyn {rela} bytes");
    assert!(
        relr > 0 && rela < 64 * 1024,
        "relocations not packed: .relr.dyn {relr} bytes, .rela.dyn {rela} bytes"
    );
    let ca = std::fs::metadata(CA_BUNDLE).map_or(0, |m| m.len());
    let total = elf.len() as u64 + ca;
    eprintln!(
        "sizes (bytes): {BINARY} {} + CA bundle {ca} = {total}",
        elf.len()
    );
    assert!(
        total <= MAX_IMAGE_BYTES,
        "the image contents are {total} bytes, over the {MAX_IMAGE_BYTES} promised"
    );

    let work = tempfile::tempdir().unwrap();
    let steps = steps_dir(work.path());
    for name in STEPS {
        let binary = steps.join(name);
        let binary = binary.to_str().unwrap();
        // Concourse passes a directory to `in` and `out` only.
        let arg = (name != "check").then_some(work.path());
        let line = step::run_raw(binary, arg, "{not json", &[]).error_line();
        assert!(line.contains("not valid JSON"), "{name}: {line}");
        // A well-formed request with a misspelt key: the config types are in the static build too.
        let request = serde_json::json!({"source": {"repository": "x", "tagg": "main"}});
        let line = step::run(binary, arg, &request, &[]).error_line();
        assert!(line.contains("tagg"), "{name}: {line}");
    }
    // By its own name it is no step at all, and says so (before reading stdin).
    let binary = steps.join(BINARY);
    let line = step::run_raw(binary.to_str().unwrap(), None, "", &[]).error_line();
    assert!(line.contains("it ran as \"resource\""), "{line}");
}

/// Size of everything under `dir` (a symbolic link counts as its own few bytes), and the paths
/// relative to it.
fn walk(dir: &Path, under: &Path, files: &mut Vec<String>) -> u64 {
    let mut size = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        if meta.is_dir() {
            size += walk(&entry.path(), under, files);
        } else {
            size += meta.len();
            let path = entry.path();
            files.push(format!("/{}", path.strip_prefix(under).unwrap().display()));
        }
    }
    size
}

#[test]
fn buildah_builds_the_dockerfile_into_a_working_image() {
    let revision = "0123456789abcdef0123456789abcdef01234567";
    image::build(VERSION, revision);
    let inspect: serde_json::Value =
        serde_json::from_str(&buildah_ok(&["inspect", "--type", "image", TAG])).unwrap();
    let config = &inspect["OCIv1"]["config"];
    let label = |key: &str| config["Labels"][format!("org.opencontainers.image.{key}")].clone();
    assert_eq!(label("version"), VERSION);
    assert_eq!(label("revision"), revision);
    assert!(
        label("source")
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{config}"
    );
    assert_eq!(config["User"], "0:0", "see the Dockerfile on why root");
    // The GitHub Action (action.yml) runs the image's entrypoint with `args: [action]`.
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!([format!("/opt/resource/{BINARY}")]),
        "{config}"
    );
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|env| env.contains(&format!("SSL_CERT_FILE={CA_BUNDLE}").into())),
        "{config}"
    );

    let container = buildah_ok(&["from", TAG]);
    let rootfs = PathBuf::from(buildah_ok(&["mount", &container]));
    let mut files = Vec::new();
    let size = walk(&rootfs, &rootfs, &mut files);
    files.sort();
    eprintln!("image contents: {size} bytes: {files:?}");
    assert_eq!(
        files,
        [
            CA_BUNDLE,
            "/opt/resource/check",
            "/opt/resource/in",
            "/opt/resource/out",
            "/opt/resource/resource"
        ],
        "a scratch image holds the binary, its three names and the CA bundle, nothing else"
    );
    for name in STEPS {
        let link = std::fs::read_link(rootfs.join("opt/resource").join(name));
        assert_eq!(
            link.ok(),
            Some(PathBuf::from(BINARY)),
            "/opt/resource/{name}"
        );
    }
    assert!(size <= MAX_IMAGE_BYTES, "{size} bytes");
    // Where a check remembers a registry's challenge for the container's next checks.
    let tmp = std::fs::symlink_metadata(rootfs.join("tmp")).expect("/tmp in the image");
    assert!(tmp.is_dir(), "/tmp is a directory");
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "/tmp's mode");

    // Each step runs inside the image as Concourse runs it: stdin, argv, the failure contract.
    for name in STEPS {
        let out = buildah(
            &[
                "run",
                "--isolation",
                "chroot",
                &container,
                "--",
                &format!("/opt/resource/{name}"),
                "/tmp",
            ],
            Some("{not json"),
        );
        let result = StepResult {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        assert_eq!(result.code, Some(1), "{name}: {result:?}");
        assert!(result.stdout.is_empty(), "{name}: {result:?}");
        // The label and the binaries report the same version (release.yml passes Cargo.toml's).
        assert_eq!(
            result.stderr.lines().next(),
            Some(format!("image-rollout-resource {VERSION} {name}").as_str()),
            "{name}: {result:?}"
        );
        assert!(
            result
                .stderr
                .contains("error: invalid request: stdin is not valid JSON"),
            "{name}: {result:?}"
        );
    }
    buildah_ok(&["rm", &container]);
}
