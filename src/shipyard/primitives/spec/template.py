"""The commented shipyard.toml that ``shipyard init`` writes."""

from __future__ import annotations

import json
import re

from shipyard.primitives.spec.models import APP_NAME

_TEMPLATE = """\
# shipyard.toml — how shipyard builds, runs and deploys {name}.
# Durations are written "500ms", "10s", "5m", "1h"; every key below is documented in the README.

[app]
name = {name_q}
# The command that starts one instance. It gets PORT (the port to listen on), SHIPYARD_ENV and
# SHIPYARD_RELEASE in its environment, and runs in the release directory.
run = {run_q}
# Commands run inside each new release after it is unpacked (their output is the build log).
# build = ["pip install -r requirements.txt"]
# Directories kept across releases and linked into each one (uploads, SQLite files, ...).
# shared = ["instance"]

# Liveness: an instance failing `retries` probes in a row is taken out of the router and restarted.
[app.health]
path = "/health"
interval = "10s"
timeout = "1s"
retries = 3
start_period = "0s"     # grace period after start before failures count

# Readiness: an instance gets traffic only once this answers 2xx (the health probe is used when absent).
# [app.ready]
# path = "/ready"
# interval = "1s"

# How instances are stopped: this signal, then SIGKILL after `grace`.
# [app.stop]
# signal = "SIGTERM"
# grace = "30s"

# Inherited by every environment below (tables such as env merge key by key).
[defaults]
replicas = 2
strategy = "rolling"    # rolling | blue-green | canary
keep_releases = 5       # newest releases kept on disk; older ones are pruned
# max_surge = 1           # rolling: extra instances started at a time
# max_unavailable = 0     # rolling: instances that may be down at a time
# drain_timeout = "30s"   # time in-flight requests get to finish on the old instances
# scale_down_delay = "5m" # blue-green: old set kept warm so a rollback is only a router switch
# deploy_timeout = "5m"   # a new instance not ready by then fails the deploy (the old one keeps serving)

# Environment variables for every instance. Per environment: [environments.NAME.env], then a
# `.env.NAME` file next to this one, then secrets (`shipyard secrets set --env NAME KEY=VALUE`).
[defaults.env]
# LOG_LEVEL = "info"

# Each environment gets its own router port (unique across environments).
[environments.staging]
port = {staging_port}

[environments.production]
port = {production_port}
replicas = 3
strategy = "blue-green"

# Metrics, history and alerts (docs/alerts.md). While `shipyard up` runs it serves Prometheus text on
# `listen`, keeps every environment's history, and evaluates alert rules; these are on by default:
#   HighErrorRate  error_rate[1m] > 5%  for 5m  HighLatency   p95[1m] > 2s      for 3m
#   HighMemory     memory > 90%     for 5m      InstanceDown  up < 1            for 1m
#   BackupFailed   backup_failed > 0            BackupTooOld  backup_age > 26h
#   DrillMissed    drill_missed > 0
# [metrics]
# listen = "127.0.0.1:9420"       # "" switches the endpoint off; a taken port: a free one (control.json)
# retention = {{ raw = "24h", minute = "90d" }}
# default_alerts = true           # false: only the [[alerts]] below
#
# A rule of your own (one with a default's name replaces it):
# [[alerts]]
# name = "CheckoutErrors"
# env = "production"              # omitted: every environment
# expr = "error_rate > 2%"        # error_rate, availability, p50|p95|p99, rps, cpu, memory, restarts, up,
#                                 # health_failures, backup_age{{source="db"}}, backup_failed, drill_missed,
#                                 # cert_expires_in; or 'promql: QUERY' with [metrics] prometheus = URL
# for = "2m"
# keep_firing_for = "1m"
# severity = "critical"           # critical | warning | info
# summary = "{{{{ env }}}}: {{{{ value }}}} of requests fail"
# runbook_url = "https://wiki.example/runbooks/errors"
#
# Logs under .shipyard/logs/ (shipyard logs --grep/--since/--trace); these are the defaults:
# [logs]
# max_size = "10MiB"              # rotate a file past this; keep = 5 copies
# keep = 5
# max_age = "14d"                 # older copies and dead instances' logs are deleted
# timestamps = false              # true: the time before each line of instance output
#
# Your own Prometheus and Grafana: shipyard export prometheus --out DIR; shipyard export grafana --out FILE
"""


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def default_app_name(text: str) -> str:
    """A valid app name derived from a directory or repository name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:63] or "app"
    return name if APP_NAME.match(name) else "app"


def render_init_template(app_name: str, run: str, ports: tuple[int, int] = (8200, 8300)) -> str:
    """The template for ``app_name`` started by ``run``; ``ports``: the staging and production router ports."""
    name = default_app_name(app_name)
    return _TEMPLATE.format(name=name, name_q=_toml_string(name), run_q=_toml_string(run),
                            staging_port=int(ports[0]), production_port=int(ports[1]))
