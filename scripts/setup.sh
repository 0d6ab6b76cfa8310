#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine of this kind, and reuses
# whatever is already there: Debian packages (Distribution registry, skopeo, ...), the musl
# target for the static image binaries, the Concourse bundle (its install.sh), and the Go-built
# tools (scripts/tools.sh).
# Prints the directory of the Go-built tools on stdout.
#
#   scripts/setup.sh        everything the tests and benchmarks need (scripts/test.sh)
#   scripts/setup.sh demo   only what scripts/demo.sh runs: the registry, buildah for the resource
#                           image, the musl target, Concourse, and the control plane's Go tools
set -euo pipefail
mode=${1:-test}
case $mode in demo|test) ;; *) echo "usage: scripts/setup.sh [demo|test]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# git + lighttpd: the Git server of the GitOps tests (git http-backend as CGI behind lighttpd, TLS
# by lighttpd-mod-openssl); openssh-server + openssh-client: their ssh Git server (sshd on a
# loopback port with its own configuration; ssh-keygen and ssh-keyscan make its keys).
# The demo's: the registry and its tools (skopeo pushes, htpasswd guards the private one), buildah
# and musl-tools for the resource image Concourse runs.
packages=(docker-registry skopeo apache2-utils musl-tools buildah)
# The tests' besides: hyperfine and time for the benchmarks, shellcheck for the scripts.
[ "$mode" = demo ] || packages+=(hyperfine time shellcheck git lighttpd lighttpd-mod-openssl openssh-server openssh-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The Debian packages start a registry service on :5000 and sshd on :22 where systemd runs; the
# tests start their own on free ports, so they are neither needed nor in the way.

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  log "adding the Rust target x86_64-unknown-linux-musl (static image binaries)"
  rustup target add x86_64-unknown-linux-musl >&2
fi

# The Concourse bundle (web, houdini worker, fly) of the end-to-end test and the demo: its own
# install.sh unpacks and verifies the binaries into the cache and installs PostgreSQL if missing.
bundle=${IRR_CONCOURSE_BUNDLE:-$root/../shared/concourse}
if [ -x "$bundle/install.sh" ]; then
  cache=${IRR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-rollout-resource}
  "$bundle/install.sh" "$cache/concourse" | sed 's/^/[setup] /' >&2
  # registry-image-resource's own check (v1.18.0, static): the oracle and the peer of the tag
  # policies (tests/tags.rs, benches/registry.rs). It runs on the host with JSON on stdin.
  rir_type="$bundle/resource-types/registry-image"
  rir_version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$rir_type/resource_metadata.json")
  rir="$cache/registry-image-resource/$rir_version"
  if [ "$mode" != demo ] && [ ! -x "$rir/check" ]; then
    mkdir -p "$rir"
    tar -xzf "$rir_type/rootfs.tgz" -C "$rir" --strip-components=3 ./opt/resource/check
  fi
elif [ "${CI:-}" = true ]; then
  log "CI=true but no Concourse bundle at $bundle (IRR_CONCOURSE_BUNDLE): the end-to-end test needs it"
  exit 1
else
  log "no Concourse bundle at $bundle (IRR_CONCOURSE_BUNDLE): the end-to-end test and the real demo will be skipped"
fi

if [ "$mode" = demo ]; then
  "$root/scripts/tools.sh" cluster
else
  "$root/scripts/tools.sh" cluster test
fi
