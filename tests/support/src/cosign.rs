//! The real cosign CLI (sigstore/cosign v2.6.5, and v3.1.3 as `cosign3`, built by
//! scripts/tools.sh), offline: key pairs made by `cosign generate-key-pair`, signatures pushed to
//! the loopback registry with `--tlog-upload=false` (no Rekor, no Fulcio, nothing leaves the
//! machine). v2 writes the legacy `.sig` layout unless asked for bundles
//! (`--new-bundle-format`); v3 writes Sigstore bundles as OCI referrers by default.
//!
//! Every run gets its own HOME, Docker config and TUF cache in a temporary directory, so cosign
//! neither reads nor writes the user's.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

const PASSWORD: &str = "testbed-cosign-password";
/// cosign's flags for a plain-http registry on loopback.
const LOOPBACK: [&str; 2] = ["--allow-http-registry", "--allow-insecure-registry"];

/// A cosign key pair on disk.
pub struct KeyPair {
    pub private_key: PathBuf,
    /// The PEM of `cosign.pub`, as `source.verify.public_keys` takes it.
    pub public_pem: String,
}

/// A cosign home: the binary and a private directory for its state and keys.
pub struct Cosign {
    dir: TempDir,
    /// `cosign` (v2.6.5) or `cosign3`.
    binary: &'static str,
}

impl Default for Cosign {
    fn default() -> Self {
        Cosign::new()
    }
}

impl Cosign {
    /// cosign v2.6.5.
    pub fn new() -> Cosign {
        Cosign::of("cosign")
    }

    /// cosign v3.1.3.
    pub fn v3() -> Cosign {
        Cosign::of("cosign3")
    }

    fn of(binary: &'static str) -> Cosign {
        Cosign {
            dir: tempfile::Builder::new()
                .prefix("cosign-")
                .tempdir()
                .expect("tempdir"),
            binary,
        }
    }

    /// The flags that make this version sign a Sigstore bundle offline: v2 needs asking for the
    /// format; v3 signs bundles anyway but, without a signing config, would ask Sigstore's
    /// services first.
    fn bundle_flags(&self) -> [&'static str; 2] {
        match self.binary {
            "cosign" => ["--new-bundle-format", "--tlog-upload=false"],
            _ => ["--use-signing-config=false", "--tlog-upload=false"],
        }
    }

    /// `cosign sign --key …` as a Sigstore bundle attached as an OCI referrer of `image` (the
    /// referrers API where the registry serves it, else the tag schema).
    pub fn sign_bundle(&self, key: &KeyPair, image: &str) {
        let mut args = vec!["sign", "--key", path(&key.private_key)];
        args.extend(self.bundle_flags());
        args.extend(LOOPBACK);
        args.push(image);
        self.run(&args);
    }

    /// `cosign attest-blob --key … --type custom` of `blob`: a DSSE bundle whose in-toto
    /// subject is the blob's sha256 — an image's, when `blob` is its manifest. Returns the
    /// bundle's JSON.
    pub fn attest_blob(&self, key: &KeyPair, blob: &[u8]) -> Vec<u8> {
        let dir = self.dir.path();
        let (file, predicate, bundle) = (
            dir.join("blob"),
            dir.join("custom.json"),
            dir.join("blob.bundle.json"),
        );
        std::fs::write(&file, blob).expect("blob");
        std::fs::write(&predicate, r#"{"note": "attached by hand"}"#).expect("predicate");
        let mut args = vec![
            "attest-blob",
            "--key",
            path(&key.private_key),
            "--type",
            "custom",
            "--predicate",
            path(&predicate),
            "--bundle",
            path(&bundle),
        ];
        args.extend(self.bundle_flags());
        args.push(path(&file));
        self.run(&args);
        std::fs::read(&bundle).expect("the bundle cosign wrote")
    }

    /// `cosign attest --key … --type TYPE --predicate FILE` of `predicate` (JSON), as a bundle.
    pub fn attest(&self, key: &KeyPair, image: &str, kind: &str, predicate: &str) {
        let file = self.dir.path().join("predicate.json");
        std::fs::write(&file, predicate).expect("predicate");
        let mut args = vec![
            "attest",
            "--key",
            path(&key.private_key),
            "--type",
            kind,
            "--predicate",
            path(&file),
        ];
        args.extend(self.bundle_flags());
        args.extend(LOOPBACK);
        args.push(image);
        self.run(&args);
    }

    /// `cosign` with this home's environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(crate::tools_bin().join(self.binary));
        let home = self.dir.path();
        cmd.current_dir(home)
            .env("HOME", home)
            .env("DOCKER_CONFIG", home.join("docker"))
            .env("TUF_ROOT", home.join("tuf"))
            .env("COSIGN_PASSWORD", PASSWORD)
            .env("COSIGN_YES", "true");
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .output()
            .expect("cannot run cosign; scripts/tools.sh builds it");
        assert!(
            out.status.success(),
            "cosign {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// `cosign generate-key-pair --output-key-prefix NAME`.
    pub fn generate_key_pair(&self, name: &str) -> KeyPair {
        self.run(&["generate-key-pair", "--output-key-prefix", name]);
        let dir = self.dir.path();
        KeyPair {
            private_key: dir.join(format!("{name}.key")),
            public_pem: std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("key"),
        }
    }

    /// `cosign login`: this home's Docker config gets `registry`'s credentials, if it wants any.
    pub fn login(&self, registry: &crate::registry::Registry) {
        if let Some(c) = registry.credentials() {
            let host = registry.host();
            self.run(&["login", &host, "-u", &c.username, "-p", &c.password]);
        }
    }

    /// `cosign sign --key … --tlog-upload=false IMAGE` (`repo@sha256:…`).
    pub fn sign(&self, key: &KeyPair, image: &str) {
        let key = path(&key.private_key);
        let mut args = vec!["sign", "--key", key, "--tlog-upload=false"];
        args.extend(LOOPBACK);
        args.push(image);
        self.run(&args);
    }

    /// Attaches to `image` a valid signature by `key` over the payload cosign generates for
    /// `named` — a real signature that vouches for another digest (`cosign generate`,
    /// `cosign sign-blob`, `cosign attach signature`).
    pub fn sign_payload_of(&self, key: &KeyPair, named: &str, image: &str) {
        let mut generate = vec!["generate"];
        generate.extend(LOOPBACK);
        generate.push(named);
        let payload = self.dir.path().join("payload.json");
        std::fs::write(&payload, self.run(&generate)).expect("payload");
        let signature = self.run(&[
            "sign-blob",
            "--key",
            path(&key.private_key),
            "--tlog-upload=false",
            path(&payload),
        ]);
        let mut attach = vec![
            "attach",
            "signature",
            "--payload",
            path(&payload),
            "--signature",
        ];
        let signature_file = self.dir.path().join("signature.b64");
        std::fs::write(&signature_file, signature.trim()).expect("signature");
        attach.push(path(&signature_file));
        attach.extend(LOOPBACK);
        attach.push(image);
        self.run(&attach);
    }

    /// Whether `cosign verify --key` accepts `image`'s signatures (the reference's verdict).
    pub fn verifies(&self, key: &KeyPair, image: &str) -> bool {
        let public = self.dir.path().join("verify.pub");
        std::fs::write(&public, &key.public_pem).expect("public key");
        let mut args = vec!["verify", "--key", path(&public), "--insecure-ignore-tlog"];
        args.extend(LOOPBACK);
        args.push(image);
        self.command()
            .args(&args)
            .output()
            .expect("run cosign")
            .status
            .success()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
