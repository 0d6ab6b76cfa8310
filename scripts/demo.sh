#!/usr/bin/env bash
# The deploy job end to end on loopback: sets everything up (scripts/setup.sh), builds the
# resource, then runs examples/demo.rs and tears down. With the Concourse bundle
# (IRR_CONCOURSE_BUNDLE, default ../shared/concourse): the shipped pipeline under a real Concourse
# (set-pipeline, the Actions step's webhook, fly watch of three deploys, the third crashing).
# Without it: registry and control plane on 127.0.0.1, check -> in -> out run by hand as Concourse
# would run them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export IRR_TOOLS_BIN; IRR_TOOLS_BIN=$("$root/scripts/setup.sh" demo)
echo "[demo] building the resource (check, in, out) and the demo" >&2
cargo build --quiet --bins --example demo
exec cargo run --quiet --example demo
