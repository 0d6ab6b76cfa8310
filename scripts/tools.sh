#!/usr/bin/env bash
# Builds (or reuses) the Go-built tools the tests and the demo need: etcd, the Kubernetes control
# plane and kubectl, kwok, crane (benchmark peer), cosign (signs test images), actionlint
# (validates the GitHub workflows), and Flux's source-controller and kustomize-controller (the
# GitOps agent of the GitOps-mode tests). Each comes from a pinned wrapper module under
# tests/support/tools/<name>/ (go.mod + go.sum), so the build is reproducible from the Go module proxy.
#
# Binaries are cached outside the checkout, keyed by a hash of the wrapper module and the Go
# version, so a warm run costs a few hashes; a cold run builds everything (tens of minutes on 2 cores).
#
#   scripts/tools.sh [SET...]   build what is missing, print the bin directory on stdout
#   IRR_CACHE=/path scripts/tools.sh
#
# Sets (default: all of them):
#   cluster  etcd, Kubernetes (apiserver, controller-manager, scheduler, kubectl), kwok: the
#            control plane the demo and the tests run. This is all scripts/demo.sh builds.
#   test     crane (benchmark peer), cosign (signs test images), cosign3 (cosign v3: signs
#            Sigstore bundles as OCI 1.1 referrers), referrers-registry (a registry serving the referrers API),
#            actionlint (checks the workflows), semver-oracle (Masterminds/semver, judge of the semver port), Flux's source-controller and kustomize-controller (the GitOps agent):
#            only the tests and benchmarks run them, and they are most of a cold build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IRR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-rollout-resource}
bin="$cache/bin"
mkdir -p "$bin"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build NAME LDFLAGS PACKAGE... : builds the packages of tests/support/tools/NAME with extra
# linker flags into a cache directory keyed by the module's content and the flags, then links them
# into $bin.
build() {
  local name=$1 ldflags=$2; shift 2
  local mod="$root/tests/support/tools/$name"
  local key
  # A wrapper with a program of its own (main.go) is keyed by that program too.
  key=$(cat "$mod/go.mod" "$mod/go.sum" <(cat "$mod/main.go" 2>/dev/null || true) \
    <(go version) <(echo "$ldflags") | sha256sum | cut -c1-16)
  local out="$cache/tools/$name-$key"
  if [ ! -f "$out/.complete" ]; then
    log "building $name ($*) — cold build, this takes a while"
    local start=$SECONDS
    rm -rf "$out"; mkdir -p "$out"
    # One package: the binary takes the tool's name (etcd's main package is called "server").
    local target="$out/"
    [ $# -eq 1 ] && target="$out/$name"
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $ldflags" -o "$target" "$@")
    # A controller module ships its CustomResourceDefinitions; keep them beside the binary so the
    # tests install exactly the CRDs of the version they run.
    local dir
    dir=$(cd "$mod" && { go list -m -f '{{.Dir}}' "$1" 2>/dev/null || true; })
    if [ -n "$dir" ] && [ -d "$dir/config/crd/bases" ]; then
      cat "$dir"/config/crd/bases/*.yaml > "$out/$name.crds.yaml"
    fi
    touch "$out/.complete"
    log "built $name in $((SECONDS - start))s"
  fi
  local f
  for f in "$out"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
}

# Kubernetes binaries built outside its own build scripts report v0.0.0-master unless told their
# version; take it from the wrapper's require line, the one place it is pinned.
k8s=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$root/tests/support/tools/kubernetes/go.mod")
k8s_minor=$(echo "$k8s" | cut -d. -f2)
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

cluster() {
  build etcd "" go.etcd.io/etcd/server/v3
  build kwok "" sigs.k8s.io/kwok/cmd/kwok
  build kubernetes "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}
test_tools() {
  build crane "" github.com/google/go-containerregistry/cmd/crane
  build cosign "" github.com/sigstore/cosign/v2/cmd/cosign
  # cosign v3 (binary cosign3): signs and attests as Sigstore bundles stored as OCI 1.1 referrers.
  build cosign3 "" github.com/sigstore/cosign/v3/cmd/cosign
  # A registry serving the OCI referrers API (go-containerregistry's, with it on): Debian's
  # Distribution 2.8 and Distribution v3.1.2 answer it 404, and the module proxy refuses zot.
  build referrers-registry "" image-rollout-resource/tools/referrers-registry
  build actionlint "" github.com/rhysd/actionlint/cmd/actionlint
  # Masterminds/semver as registry-image-resource pins it: the judge of src/policy/semver.rs.
  build semver-oracle "" image-rollout-resource/tools/semver-oracle
  # Flux v1.9.6. v1.10.x is blocked here, not by Go (GOTOOLCHAIN=go1.27.3 gets Go 1.27) but by the
  # module proxy, which refuses modules both controllers require (docs/testing.md, "Flux").
  build source-controller "" github.com/fluxcd/source-controller
  build kustomize-controller "" github.com/fluxcd/kustomize-controller
}

[ $# -gt 0 ] || set -- cluster test
for set in "$@"; do
  case $set in
    cluster) cluster ;;
    test) test_tools ;;
    *) log "unknown tool set $set (cluster, test)"; exit 2 ;;
  esac
done
log "tools ready in $bin"
echo "$bin"
