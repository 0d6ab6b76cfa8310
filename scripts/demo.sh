#!/usr/bin/env bash
# The deploy job end to end on loopback: sets everything up (scripts/setup.sh), builds the
# resource, then runs examples/demo.rs — a registry and a Kubernetes control plane on 127.0.0.1,
# check -> in -> out as Concourse would run them, twice (v1, then v2) — and tears down.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export IRR_TOOLS_BIN; IRR_TOOLS_BIN=$("$root/scripts/setup.sh")
echo "[demo] building the resource (check, in, out) and the demo" >&2
cargo build --quiet --bins --example demo
exec cargo run --quiet --example demo
