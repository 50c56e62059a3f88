#!/usr/bin/env bash
# Builds the root file system of a minimal Debian (bookworm) with python3 and venv, as a tarball that the
# image tests `docker import` as their base image: no image can be pulled from a registry on these machines.
# Once per machine (the tarball is cached); a second run exits at once.
# Usage: scripts/build-base-image.sh [OUT]   (default ~/.cache/shipyard/docker/python3-bookworm.tar; needs root)
set -euo pipefail
out=${1:-${SHIPYARD_BASE_IMAGE_TAR:-$HOME/.cache/shipyard/docker/python3-bookworm.tar}}
[ -s "$out" ] && exit 0
command -v debootstrap >/dev/null || { echo "build-base-image: debootstrap is missing: run scripts/setup-system.sh" >&2; exit 1; }
# The machine's own Debian mirror (deb822 sources, else sources.list), else Debian's.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "build-base-image: debootstrap bookworm from $mirror"
if ! nice -n 19 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
    "$tmp/root" "$mirror" >"$tmp/log" 2>&1; then
  tail -20 "$tmp/log" >&2
  exit 1
fi
rm -rf "$tmp"/root/usr/share/{doc,man,info,locale}/* "$tmp"/root/var/cache/apt/*.bin \
  "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/*
# Trust what this machine trusts: where a TLS-inspecting proxy stands in front of PyPI, pip inside a build
# needs its CA, which the host's bundle holds.
cp /etc/ssl/certs/ca-certificates.crt "$tmp/root/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$(dirname "$out")"
tar --numeric-owner -C "$tmp/root" -cf "$out.part" .
mv "$out.part" "$out"
echo "build-base-image: $out ($(du -h "$out" | cut -f1)) in $(( $(date +%s) - start )) s"
