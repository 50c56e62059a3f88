#!/usr/bin/env bash
# Builds the Kubernetes toolchain the kube tests run against, into ~/.cache/shipyard/k8s/<version>/bin:
# kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes from the Go module proxy), kwok
# (fake nodes that make pods Ready), Argo Rollouts' controller and its CRDs. etcd comes from Debian (setup-system.sh).
# Idempotent: a binary already in the cache is not built again. Builds run one at a time at nice 19.
# Usage: scripts/setup-k8s.sh [--no-argo]   (SHIPYARD_K8S_CACHE overrides the cache root)
# Argo Rollouts is built by default: the canary tests (tests/kube/test_kube_canary.py) run its controller.
# SHIPYARD_K8S_ARGO=0 (or --no-argo) skips it, e.g. on a machine that never runs those tests; they then
# fail saying to run this script.
set -euo pipefail
K8S_VERSION=v1.34.4
STAGING_VERSION=v0.${K8S_VERSION#v1.}       # k8s.io/api etc. are published as v0.<minor>.<patch>
KWOK_VERSION=v0.7.0
ROLLOUTS_VERSION=v1.8.5
ROOT=${SHIPYARD_K8S_CACHE:-$HOME/.cache/shipyard/k8s}
DEST=$ROOT/$K8S_VERSION
BIN=$DEST/bin
mkdir -p "$BIN"
ARGO=${SHIPYARD_K8S_ARGO:-1}
[ "${1:-}" = "--argo" ] && ARGO=1   # the default now; kept so older invocations still work
[ "${1:-}" = "--no-argo" ] && ARGO=0
done=1
for b in kube-apiserver kube-controller-manager kube-scheduler kwok; do [ -x "$BIN/$b" ] || done=0; done
if [ "$ARGO" = 1 ]; then
  [ -x "$BIN/rollouts-controller" ] && [ -d "$DEST/crds/rollouts" ] || done=0
fi
[ $done -eq 1 ] && { echo "setup-k8s: toolchain already in $BIN"; exit 0; }
export GOFLAGS=-trimpath GOTOOLCHAIN=local CGO_ENABLED=0
command -v go >/dev/null || { echo "setup-k8s: go is required (Go toolchain not found)" >&2; exit 1; }

# A throwaway module that requires $1@$2 and turns the dependency's own replace directives into ones a
# consumer can use: k8s.io/kubernetes replaces its staging modules with ./staging/src/k8s.io/<name> at v0.0.0,
# which become the published k8s.io/<name> $STAGING_VERSION.
prepare_module() {  # prepare_module <module> <version> <dir> <package>...
  local mod=$1 ver=$2 dir=$3; shift 3
  [ -f "$dir/.ready" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    go mod init shipyard.local/k8sbuild >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "$mod@$ver" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    awk -v staging="$STAGING_VERSION" '
      /^replace \(/ {inblock=1; next}
      inblock && /^\)/ {inblock=0; next}
      inblock || /^replace / {
        line=$0; sub(/^replace /, "", line); sub(/\/\/.*/, "", line)
        n=split(line, f, " "); if (n < 3) next
        if (f[n] ~ /^\.\/staging\/src\//) { printf "replace %s => %s %s\n", f[1], f[1], staging }
        else if (f[n-1] ~ /^(\.|\/)/ || f[n] ~ /^(\.|\/)/) { next }
        else { print "replace " line }
      }' "$gomod" >> go.mod
    local pkgs=() p
    for p in "$@"; do pkgs+=("$p@$ver"); done
    nice -n 19 go get "${pkgs[@]}" >/dev/null
  ) || return 1  # explicit: errexit is off where the caller tests the result
  touch "$dir/.ready"
}

build() {  # build <module dir> <package> <output name>
  local dir=$1 pkg=$2 out=$3
  [ -x "$BIN/$out" ] && { echo "setup-k8s: $out already built"; return 0; }
  echo "setup-k8s: building $out ($pkg)"
  local start=$SECONDS
  (cd "$dir" && nice -n 19 go build -p 1 -ldflags=-s -o "$BIN/$out.tmp" "$pkg") || return 1
  mv "$BIN/$out.tmp" "$BIN/$out" || return 1
  echo "setup-k8s: $out built in $((SECONDS - start)) s"
}

K8S_MOD=$DEST/build/kubernetes
prepare_module k8s.io/kubernetes "$K8S_VERSION" "$K8S_MOD" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  build "$K8S_MOD" "k8s.io/kubernetes/cmd/$c" "$c"
done

KWOK_MOD=$DEST/build/kwok
prepare_module sigs.k8s.io/kwok "$KWOK_VERSION" "$KWOK_MOD" sigs.k8s.io/kwok/cmd/kwok
build "$KWOK_MOD" sigs.k8s.io/kwok/cmd/kwok kwok

# Argo Rollouts (the controller and its CRDs) runs canaries on Kubernetes; the canary tests start it, so a
# failed build fails the setup.
rollouts() {
  local mod=$DEST/build/rollouts src
  prepare_module github.com/argoproj/argo-rollouts "$ROLLOUTS_VERSION" "$mod" \
    github.com/argoproj/argo-rollouts/cmd/rollouts-controller || return 1
  build "$mod" github.com/argoproj/argo-rollouts/cmd/rollouts-controller rollouts-controller || return 1
  if [ ! -d "$DEST/crds/rollouts" ]; then
    src=$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-rollouts) || return 1
    mkdir -p "$DEST/crds/rollouts.tmp"
    cp "$src"/manifests/crds/*-crd.yaml "$DEST/crds/rollouts.tmp/" && chmod -R u+w "$DEST/crds/rollouts.tmp" &&
      mv "$DEST/crds/rollouts.tmp" "$DEST/crds/rollouts"
  fi
}
if [ "$ARGO" = 1 ] && ! rollouts; then
  echo "setup-k8s: Argo Rollouts $ROLLOUTS_VERSION could not be built (tests/kube/test_kube_canary.py needs it;" \
       "SHIPYARD_K8S_ARGO=0 skips it)" >&2
  exit 1
fi
echo "setup-k8s: toolchain ready in $BIN"
