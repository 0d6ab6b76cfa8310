//! Link settings for the image's binary (the Dockerfile builds it for a musl target); other
//! targets link as usual.
//!
//! - `link/cold-text.ld` puts `out`-only code in a region of its own, so that `check` and `in`
//!   map less of the binary (why and what it saves: that file). tests/image.rs fails if the
//!   region is missing from the image's binary.
//! - `-z pack-relative-relocs` stores the static-pie's relocations as RELR (a bitmap of the
//!   places to adjust, which musl's start-up code applies) instead of one 24-byte RELA entry
//!   each: 4.7 KB instead of 364 KB, which every process read at start-up and mapped.

fn main() {
    println!("cargo::rerun-if-changed=link/cold-text.ld");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{root}/link/cold-text.ld");
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
