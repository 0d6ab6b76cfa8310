#!/usr/bin/env bash
# Runs the whole test suite: lints, unit and integration tests (real registry, real control
# plane on loopback). Sets everything up first (see scripts/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export IRR_TOOLS_BIN; IRR_TOOLS_BIN=$("$root/scripts/setup.sh")
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --test-threads=4
