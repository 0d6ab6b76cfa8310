//! What the system roots cost when a registry on https needs them (src/http/tls.rs reads them
//! only then), for the two ways a static binary can have them:
//!
//! - `bundle`: the CA bundle file (`SSL_CERT_FILE`, in the image `/etc/ssl/certs/ca-certificates.crt`),
//!   read and parsed at run time by rustls-native-certs; what the resource does;
//! - `built-in`: the Mozilla roots compiled into the binary (webpki-roots), copied into a store.
//!
//!     cargo bench --bench tls_roots        # IRR_BENCH_RUNS=30 by default
//!
//! Each run is a fresh process (this bench, re-run with `IRR_TLS_ROOTS=<way>`) that builds a
//! rustls verifier from the roots and exits, under `/usr/bin/time` like the registry benchmark;
//! `none` builds nothing and is the baseline. Medians of interleaved runs.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;

const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn main() {
    if let Ok(way) = std::env::var("IRR_TLS_ROOTS") {
        return load(&way);
    }
    let runs: usize = std::env::var("IRR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let me = std::env::current_exe().expect("own path");
    let ways = ["none", "bundle", "built-in"];
    let mut samples: Vec<Vec<(Duration, u64)>> = vec![Vec::new(); ways.len()];
    for _ in 0..3 + runs {
        for (way, samples) in ways.iter().zip(&mut samples) {
            let rss = tempfile::NamedTempFile::new().expect("tempfile");
            let started = Instant::now();
            let status = Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(rss.path())
                .arg(&me)
                .env("IRR_TLS_ROOTS", way)
                .env("SSL_CERT_FILE", BUNDLE)
                .status()
                .expect("cannot run /usr/bin/time");
            let wall = started.elapsed();
            assert!(status.success(), "{way} failed");
            let kib = std::fs::read_to_string(rss.path()).expect("time's output");
            samples.push((wall, kib.trim().parse().expect("KiB")));
        }
    }
    let bundle_bytes = std::fs::metadata(BUNDLE).map_or(0, |m| m.len());
    // What the built-in roots add to a binary: their DER data (plus a few words per anchor).
    let builtin_bytes: usize = webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .map(|a| {
            a.subject.len()
                + a.subject_public_key_info.len()
                + a.name_constraints.as_ref().map_or(0, |n| n.len())
        })
        .sum();
    println!("system roots, median of {runs} fresh processes each (after 3 warm-ups):");
    println!(
        "{:<10} {:>10} {:>11} {:>10}",
        "roots", "wall", "peak RSS", "roots"
    );
    for (way, samples) in ways.iter().zip(samples) {
        let (mut walls, mut rss): (Vec<_>, Vec<_>) = samples[3..].iter().copied().unzip();
        walls.sort_unstable();
        rss.sort_unstable();
        println!(
            "{way:<10} {:>10} {:>11} {:>10}",
            format!("{:.2} ms", walls[walls.len() / 2].as_secs_f64() * 1e3),
            format!("{:.2} MiB", rss[rss.len() / 2] as f64 / 1024.0),
            count(way),
        );
    }
    println!(
        "size: bundle file {bundle_bytes} bytes in the image; built-in roots {builtin_bytes} bytes of DER in each binary that links them ({} anchors)",
        webpki_roots::TLS_SERVER_ROOTS.len()
    );
}

/// How many roots each way yields.
fn count(way: &str) -> usize {
    match way {
        "bundle" => rustls_native_certs::load_native_certs().certs.len(),
        "built-in" => webpki_roots::TLS_SERVER_ROOTS.len(),
        _ => 0,
    }
}

/// One run: the verifier `way` gives, as the resource builds it.
fn load(way: &str) {
    let mut roots = RootCertStore::empty();
    match way {
        "bundle" => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        "built-in" => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        _ => return,
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .expect("verifier");
    std::hint::black_box(verifier);
}
