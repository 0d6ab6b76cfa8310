//! The Sigstore project's own bundle verification cases (`../shared/sigstore-conformance`, 70
//! cases unchanged from sigstore/sigstore-conformance, with the public-good production trusted
//! root; its README gives the layout and provenance), each run through the code `source.verify`
//! runs for a bundle ([`BundlePolicy::verify`]), with the case's blob as the subject. A case named
//! `…_fail` must be refused, every other must verify; one disagreement fails the test.
//!
//! As the suite's own client does: the artifact is the case's `artifact` (else `a.txt`), the
//! expected identity and issuer its `identity` / `issuer` files (else the suite's defaults), a
//! `key.pub` replaces them with a key, and a `trusted_root.json` replaces the production root.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use image_rollout_resource::verify::bundle::{BundlePolicy, Subject};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/sigstore-conformance")
}

/// One case: `Ok` when it verified, else why not.
fn run(case: &Path) -> Result<(), String> {
    let read = |name: &str| std::fs::read_to_string(case.join(name)).ok();
    let root = read("trusted_root.json").unwrap_or_else(|| {
        std::fs::read_to_string(suite().join("production_trusted_root.json"))
            .expect("the production trusted root")
    });
    let artifact = std::fs::read(case.join("artifact"))
        .or_else(|_| std::fs::read(suite().join("bundle-verify/a.txt")))
        .expect("the artifact");
    let policy = match read("key.pub") {
        Some(pem) => {
            let key = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("key.pub: {e:?}"))?;
            BundlePolicy::new(vec![key.to_vec()], None, Some(&root))?
        }
        None => {
            let text = |name: &str, default: &str| {
                read(name).map_or(default.to_string(), |t| t.trim().to_string())
            };
            let keyless = (text("identity", IDENTITY), text("issuer", ISSUER));
            BundlePolicy::new(Vec::new(), Some(keyless), Some(&root))?
        }
    };
    let bundle = read("bundle.sigstore.json").ok_or("no bundle.sigstore.json")?;
    policy.verify(&bundle, Subject::Blob(&artifact)).map(|_| ())
}

#[test]
fn every_sigstore_conformance_case_agrees() {
    let dir = suite().join("bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the suite is in ../shared)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 70, "the suite has 70 cases");
    let mut disagreements = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = !name.ends_with("_fail");
        let result = run(case);
        if result.is_ok() != expected {
            disagreements.push(format!(
                "{name}: expected {}, got {result:?}",
                if expected { "verified" } else { "refused" }
            ));
        }
    }
    // Written past libtest's capture, so that every run (CI's included) shows the score.
    writeln!(
        std::io::stderr(),
        "{}/{} agree with the Sigstore conformance suite",
        cases.len() - disagreements.len(),
        cases.len()
    )
    .unwrap();
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
