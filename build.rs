//! Links the image's binary (the Dockerfile builds it for a musl target) with
//! `link/cold-text.ld`, which puts `out`-only code in a region of its own so that `check` and
//! `in` map less of the binary; why and what it saves is in that file. Other targets link as
//! usual. tests/image.rs fails if the region is missing from the image's binary.

fn main() {
    println!("cargo::rerun-if-changed=link/cold-text.ld");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{root}/link/cold-text.ld");
    }
}
