#!/usr/bin/env bash
# Installs the system packages shipyard's tests, demo and benchmarks use, where they are missing.
# Usage: scripts/setup-system.sh [test|bench]   (idempotent; needs root or sudo for apt-get)
set -euo pipefail
want=(git zstd)
have_pg() { command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; }
have_pg || want+=(postgresql)
# As root the test clusters run as the 'postgres' system user, which the postgresql package creates.
[ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || want+=(postgresql)
command -v psql >/dev/null 2>&1 || want+=(postgresql-client)
command -v pgbackrest >/dev/null 2>&1 || want+=(pgbackrest)
# The metrics tests start a real Prometheus that scrapes the control plane (tests/e2e/test_metrics_prometheus.py).
command -v prometheus >/dev/null 2>&1 || want+=(prometheus)
# The off-site backup tests start a real sshd (SFTP), MariaDB and Redis (tests/offsite/).
[ -x /usr/sbin/sshd ] || want+=(openssh-server)
command -v mariadbd >/dev/null 2>&1 || want+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || want+=(mariadb-client)
command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
# The notification tests forward alerts to a real Alertmanager (tests/notify/).
command -v prometheus-alertmanager >/dev/null 2>&1 || want+=(prometheus-alertmanager)
# promtool (same package) checks and unit-tests the exported rule file (tests/export/).
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
# The Kubernetes tests run a real etcd under the API server that scripts/setup-k8s.sh builds (tests/kube).
command -v etcd >/dev/null 2>&1 || want+=(etcd-server)
# The status page and reports are rendered in headless Chromium by Playwright (tests/faces): the machine's
# browser, as Playwright's own download cannot work here.
command -v chromium >/dev/null 2>&1 || want+=(chromium)
# The image tests (tests/kube/test_kube_image.py) build with a real Docker engine, push to a real registry, and
# import a base image made by debootstrap (scripts/build-base-image.sh): nothing can be pulled here.
command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || want+=(docker-registry)
command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
if [ "${1:-test}" = "bench" ]; then
  command -v nginx >/dev/null 2>&1 || want+=(nginx-light)
  command -v haproxy >/dev/null 2>&1 || want+=(haproxy)
  command -v wrk >/dev/null 2>&1 || want+=(wrk)
  command -v hey >/dev/null 2>&1 || want+=(hey)
fi
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker.io enables the system engine where systemd runs; the tests start their own (their own
# data root and socket), so nothing else is needed here. The base image's root file system, once:
[ "${1:-test}" != "test" ] || $SUDO env HOME="$HOME" bash "$(dirname "$0")/build-base-image.sh"
