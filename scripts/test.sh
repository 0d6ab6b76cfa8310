#!/usr/bin/env bash
# Runs the whole test suite: lints, unit and integration tests (real registry, real control
# plane, real Concourse, Git servers and Flux on loopback). Sets everything up first (see
# scripts/setup.sh).
#
# The test binaries are built once, then run in two lanes at the same time, because the 2 cores
# are otherwise idle for most of a run:
#   image lane  tests/image.rs, tests/action.rs and tests/concourse.rs, which start with the static release build
#               of the image's binary (fat LTO into one codegen unit: one core for minutes), then
#               mostly wait on Concourse;
#   main lane   everything else, one binary after the other, then the doc tests.
# Each binary's output is printed whole when it ends, under a header with its wall time; the
# summary at the end lists every binary's time (docs/testing.md, "CI time").
#
#   scripts/test.sh                 everything (what .ci/run runs)
#   scripts/test.sh registry out    only these test targets (after the lints), in one lane
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export IRR_TOOLS_BIN; IRR_TOOLS_BIN=$("$root/scripts/setup.sh")
log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

start=$SECONDS
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The library's docs: every intra-doc link resolves, no link into private items.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet
log "lints passed in $((SECONDS - start))s"

build=$SECONDS
# name<TAB>executable<TAB>directory to run it in (its package's, as cargo test does)
cargo test --workspace --no-run --message-format=json-render-diagnostics \
  | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    t = m["target"]
    name = t["name"] if t["kind"] == ["test"] else t["name"] + " (" + t["kind"][0] + ")"
    print("\t".join([name, m["executable"], os.path.dirname(m["manifest_path"])]))
' > target/test-binaries.tsv
log "built $(wc -l < target/test-binaries.tsv) test binaries in $((SECONDS - build))s"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run NAME EXE DIR: one test binary, its output printed whole when it ends.
run() {
  local name=$1 exe=$2 dir=$3 out="$results/${1// /_}.log" began=$SECONDS rc=0
  (cd "$dir" && "$exe" --test-threads=4) > "$out" 2>&1 || rc=$?
  local took=$((SECONDS - began))
  {
    echo "==== $name: $( [ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)" ) in ${took}s"
    cat "$out"
  }
  printf '%s\t%s\t%s\n' "$name" "$took" "$rc" >> "$results/times"
  return $rc
}

# lane only|except "TARGET ...": runs the listed binaries (or all the others) one after the other.
lane() {
  local mode=$1 list=" $2 " failed=0 name exe dir
  while IFS=$'\t' read -r name exe dir; do
    run "$name" "$exe" "$dir" || failed=1
  done < <(awk -F'\t' -v mode="$mode" -v list="$list" \
             '(index(list, " " $1 " ") > 0) == (mode == "only")' target/test-binaries.tsv)
  return $failed
}

# doc: the doc tests (cargo runs them; they are not among the binaries).
doc() {
  local began=$SECONDS rc=0
  cargo test --workspace --doc --quiet > "$results/doc.log" 2>&1 || rc=$?
  echo "==== doc tests: $( [ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)" ) in $((SECONDS - began))s"
  cat "$results/doc.log"
  printf 'doc tests\t%s\t%s\n' "$((SECONDS - began))" "$rc" >> "$results/times"
  return $rc
}

image_lane="image action concourse"
tests=$SECONDS
failed=0
if [ $# -gt 0 ]; then
  lane only "$*" || failed=1
else
  lane only "$image_lane" > "$results/image-lane.log" 2>&1 &
  image=$!
  lane except "$image_lane" || failed=1
  doc || failed=1
  wait $image || failed=1
  cat "$results/image-lane.log"
fi

log "tests took $((SECONDS - tests))s (whole run $((SECONDS - start))s); per binary:"
sort -t$'\t' -k2,2nr "$results/times" | awk -F'\t' '{printf "  %-40s %5ss %s\n", $1, $2, ($3 == 0 ? "ok" : "FAILED")}' >&2
exit $failed
