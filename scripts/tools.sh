#!/usr/bin/env bash
# Builds (or reuses) the Go-built tools the tests and the demo need: etcd, the Kubernetes control
# plane and kubectl, kwok, and crane (benchmark peer). Each comes from a pinned wrapper module under
# tests/support/tools/<name>/ (go.mod + go.sum), so the build is reproducible from the Go module proxy.
#
# Binaries are cached outside the checkout, keyed by a hash of the wrapper module and the Go
# version, so a warm run costs a few hashes; a cold run builds everything (tens of minutes on 2 cores).
#
#   scripts/tools.sh            build what is missing, print the bin directory on stdout
#   IRR_CACHE=/path scripts/tools.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IRR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-rollout-resource}
bin="$cache/bin"
mkdir -p "$bin"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build NAME PACKAGE... : builds the packages of tests/support/tools/NAME into a cache directory
# keyed by the module's content, then links them into $bin.
build() {
  local name=$1; shift
  local mod="$root/tests/support/tools/$name"
  local key
  key=$(cat "$mod/go.mod" "$mod/go.sum" <(go version) | sha256sum | cut -c1-16)
  local out="$cache/tools/$name-$key"
  if [ ! -f "$out/.complete" ]; then
    log "building $name ($*) — cold build, this takes a while"
    local start=$SECONDS
    rm -rf "$out"; mkdir -p "$out"
    # One package: the binary takes the tool's name (etcd's main package is called "server").
    local target="$out/"
    [ $# -eq 1 ] && target="$out/$name"
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$target" "$@")
    touch "$out/.complete"
    log "built $name in $((SECONDS - start))s"
  fi
  local f
  for f in "$out"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
}

build etcd go.etcd.io/etcd/server/v3
build kwok sigs.k8s.io/kwok/cmd/kwok
build crane github.com/google/go-containerregistry/cmd/crane
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
log "tools ready in $bin"
echo "$bin"
