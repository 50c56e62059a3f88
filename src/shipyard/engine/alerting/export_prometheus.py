"""``shipyard export prometheus``: a scrape config for shipyard's endpoint and the alert rules as a
Prometheus rule file (pure: a spec in, YAML-as-JSON documents out).

Every rule (the shipped defaults and ``[[alerts]]``, resolved per environment as the evaluator resolves
them) becomes one alerting rule with the same threshold, ``for`` and ``keep_firing_for``, its expression
written in PromQL over the series ``GET /metrics`` exports (``PROMQL`` below; docs/alerts.md "Export").
Where the two differ, the rule file says so in a comment:

- the router series advance every 10 s (the recorder's tick) and are scraped every 15 s, so a rate
  window is at least 1 m (4 scrapes), where shipyard's own evaluator reads 10 s (or the rule's
  ``[window]``) of the router's per-second traffic;
- ``error_rate`` counts 5xx and unanswered requests; the failed attempts the router retried elsewhere,
  which shipyard's own series also count, are not part of ``http_requests_total``;
- ``backup_age``: a source whose runs all failed has no success timestamp, so Prometheus has no value
  (shipyard: infinitely old — ``backup_failed`` fires for it in both);
- ``promql:`` expressions are copied as they are.

Prometheus file formats are YAML; JSON is YAML, so the documents are written as JSON (no YAML library).
Comments, which JSON lacks, go in a header the caller writes as ``#`` lines before the document.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from shipyard.engine.alerting.rules import Rule, format_value, rules_for
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.alerting import SERIES

RATE_S = 60  # the shortest rate window a 15 s scrape of 10 s steps supports (shipyard's own: 10 s)
RESTARTS = "10m"  # engine.alerting.values.RESTARTS_WINDOW_S


def _sel(name: str, env: str, **labels: str) -> str:
    parts = [f'env="{env}"'] + [f'{k}{v}' if v[:1] in "=!" else f'{k}="{v}"' for k, v in labels.items()]
    return f"{name}{{{','.join(parts)}}}"


def promql_of(series: str, env: str, labels: dict[str, str] | None = None, window: float | None = None) -> str:
    """The PromQL that computes shipyard's ``series`` for ``env`` from the exported series (a rate over
    ``window``, or 1 m when that is shorter)."""
    labels = labels or {}
    rng = _duration(max(RATE_S, window or 0))
    src = {"source": labels["source"]} if "source" in labels else {}
    requests = f"sum by (env) (rate({_sel('http_requests_total', env)}[{rng}]))"
    failed = _sel("http_requests_total", env, code='=~"5xx|none"')
    errors = f"(sum by (env) (rate({failed}[{rng}])) or 0 * {requests})"

    def quantile(q: float) -> str:
        return (f"histogram_quantile({q}, sum by (env, le) "
                f"(rate({_sel('http_request_duration_seconds_bucket', env)}[{rng}])))")

    table = {
        "error_rate": f"{errors} / {requests}",
        "availability": f"1 - {errors} / {requests}",
        "p50": quantile(0.5), "p95": quantile(0.95), "p99": quantile(0.99),
        "rps": requests,
        "cpu": f"max by (env) ({_sel('shipyard_instance_cpu_ratio', env)})",
        "memory": f"max by (env) ({_sel('shipyard_instance_memory_ratio', env)})",
        "restarts": f"sum by (env) (increase({_sel('shipyard_instance_restarts_total', env)}[{RESTARTS}]))",
        "up": f"sum by (env) ({_sel('shipyard_instances_up', env)})",
        "health_failures": f"max by (env) ({_sel('shipyard_instance_health_failures', env)})",
        "backup_age": f"max by (env) (time() - {_sel('shipyard_backup_last_success_timestamp_seconds', env, **src)})",
        "backup_failed": f"sum by (env) ({_sel('shipyard_backup_last_run_failed', env, **src)})",
        "drill_missed": f"max by (env) (1 - {_sel('shipyard_drill_ok', env)})",
        "cert_expires_in": f"min by (env) ({_sel('shipyard_cert_expiry_timestamp_seconds', env)}) - time()",
    }
    return table[series]


# What each series reads, for the rule file's comments and docs/alerts.md.
NOTES: dict[str, str] = {
    "error_rate": "5xx and unanswered requests over all requests; router retries are not in http_requests_total",
    "availability": "1 - error_rate",
    "backup_age": "a source whose runs all failed has no timestamp here (shipyard: infinitely old)",
    "backup_failed": 'source "*" is a scheduled job that failed or was missed as a whole',
    "drill_missed": "per source of the newest drill; shipyard: the newest drill as a whole",
}


@dataclass(frozen=True)
class Rendered:
    text: str  # the file's content: "#" comment lines, then the JSON document
    document: dict[str, Any]


def _threshold(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _duration(seconds: float) -> str:
    s = int(math.ceil(seconds))
    if s == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return out


def annotation(template: str, rule: Rule) -> str:
    """A shipyard summary as a Prometheus template: ``{{ value }}`` in the series' unit, 4 digits."""
    unit = SERIES[rule.expr.series].unit if rule.expr.series in SERIES else "number"
    value = {"fraction": "{{ $value | humanizePercentage }}", "seconds": "{{ $value | humanizeDuration }}",
             "number": '{{ $value | printf "%.4g" }}'}[unit]
    literal = {"alertname": rule.name, "env": rule.env, "expr": rule.expr.text, "severity": rule.severity,
               "threshold": format_value(rule.expr.series, rule.expr.threshold)}
    out = template
    for key, text in literal.items():
        for form in (f"{{{{ {key} }}}}", f"{{{{{key}}}}}"):
            # Prometheus would read a literal "{{" as a template: keep the text, escape nothing else.
            out = out.replace(form, text.replace("{{", "{{ `{{` }}"))
    return out.replace("{{ value }}", value).replace("{{value}}", value)


def rule_expr(rule: Rule) -> str:
    e = rule.expr
    if e.promql is not None:
        return e.promql.replace("{{ env }}", rule.env).replace("{{env}}", rule.env)
    return f"{promql_of(e.series, rule.env, dict(e.labels), e.window)} {e.op} {_threshold(e.threshold)}"


def prometheus_rule(rule: Rule) -> dict[str, Any]:
    doc: dict[str, Any] = {"alert": rule.name, "expr": rule_expr(rule)}
    if rule.for_s:
        doc["for"] = _duration(rule.for_s)
    if rule.keep_firing_for_s:
        doc["keep_firing_for"] = _duration(rule.keep_firing_for_s)
    doc["labels"] = {"severity": rule.severity, "env": rule.env}  # env: one rule per environment, distinct
    doc["annotations"] = {"summary": annotation(rule.summary, rule), "shipyard_expr": rule.expr.text}
    if rule.runbook_url:
        doc["annotations"]["runbook_url"] = rule.runbook_url
    return doc


def rule_file(spec: Spec) -> Rendered:
    """One group per environment; evaluated every 15 s (the scrape interval)."""
    rules = rules_for(spec)
    groups = []
    for env in spec.env_names:
        mine = [r for r in rules if r.env == env]
        if mine:
            groups.append({"name": f"shipyard-{spec.app.name}-{env}", "interval": "15s",
                           "rules": [prometheus_rule(r) for r in mine]})
    doc = {"groups": groups}
    used = sorted({r.expr.series for r in rules})
    head = [f"# shipyard {spec.app.name}: alert rules rendered from shipyard.toml ([[alerts]] and the shipped defaults)",
            "# by `shipyard export prometheus`. Same thresholds, for and keep_firing_for as shipyard's evaluator.",
            "# Router series advance every 10 s (the control plane's recorder): rate windows are at least 1m",
            "# (shipyard's evaluator reads 10 s of per-second traffic, or the rule's [window])."]
    head += [f"# {s}: {NOTES[s]}" for s in used if s in NOTES]
    if "promql" in used:
        head.append("# promql: expressions are copied as written ({{ env }} replaced).")
    return Rendered("\n".join(head) + "\n" + json.dumps(doc, indent=2) + "\n", doc)


def scrape_config(spec: Spec, target: str, rules_path: str = "shipyard-rules.yml") -> Rendered:
    """A prometheus.yml fragment: one job scraping shipyard's endpoint, the rule file loaded."""
    doc = {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
           "rule_files": [rules_path],
           "scrape_configs": [{"job_name": f"shipyard-{spec.app.name}", "scrape_interval": "15s",
                               "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}]}
    head = [f"# shipyard {spec.app.name}: scrape config for the control plane's [metrics] endpoint",
            "# (router and control-plane series; no token: keep it on loopback or a private network)."]
    return Rendered("\n".join(head) + "\n" + json.dumps(doc, indent=2) + "\n", doc)
