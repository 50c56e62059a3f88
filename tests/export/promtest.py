"""A `promtool test rules` file for exported rules: for each rule, input series of the exported metric
names that make its shipyard series cross the threshold, the alert expected firing once `for` has passed
(with its annotation as Prometheus renders it) and not yet firing before.

The values are chosen so that the PromQL result is exact (linear counters, one histogram bucket), and
the expected annotation is formatted the way Prometheus' template functions format it
(humanizePercentage, humanizeDuration, printf "%.4g").
"""

from __future__ import annotations

import math
import re
from typing import Any

from shipyard.engine.alerting.export_prometheus import annotation
from shipyard.engine.alerting.rules import Rule
from shipyard.primitives.metrics.prometheus import LE_EDGES
from shipyard.primitives.spec.alerting import SERIES

STEP = 15  # seconds between input samples (and the group's evaluation interval)
SAMPLES = 120  # 30 minutes of input


def bad_value(rule: Rule) -> float:
    """A value of the rule's series that makes its comparison true."""
    t, op = rule.expr.threshold, rule.expr.op
    unit = SERIES[rule.expr.series].unit
    if op in (">", ">="):
        v = t * 2 if t > 0 else t + 1
        return (t + 1) / 2 if unit == "fraction" and v > 1 else v
    if op in ("<", "<="):
        return t / 2 if t > 0 else t - 1
    return t if op == "==" else t + 1


def _counter(per_second: float) -> str:
    return f"0+{per_second * STEP:g}x{SAMPLES}"


def _gauge(v: float) -> str:
    return f"{v:g}+0x{SAMPLES}"


def _go_g(v: float) -> str:
    return f"{v:.4g}"


def humanize_duration(v: float) -> str:
    """Prometheus' humanizeDuration."""
    if math.isnan(v) or math.isinf(v):
        return _go_g(v)
    if v == 0:
        return f"{v:.4g}s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        d = int(abs(v))
        s, m, h, days = d % 60, d // 60 % 60, d // 3600 % 24, d // 86400
        if days:
            return f"{sign}{days}d {h}h {m}m {s}s"
        if h:
            return f"{sign}{h}h {m}m {s}s"
        if m:
            return f"{sign}{m}m {s}s"
        return f"{sign}{abs(v):.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{v:.4g}{prefix}s"


def formatted(rule: Rule, value: float) -> str:
    unit = SERIES[rule.expr.series].unit
    if unit == "fraction":
        return f"{value * 100:.4g}%"
    if unit == "seconds":
        return humanize_duration(value)
    return _go_g(value)


def case(rule: Rule) -> tuple[list[dict[str, str]], float, float]:
    """(input series, the PromQL value at the evaluation time, the evaluation time in seconds)."""
    env, s = rule.env, rule.expr.series
    v = bad_value(rule)
    at = math.ceil((rule.for_s + 120) / STEP) * STEP
    src = dict(rule.expr.labels).get("source", "db")

    def m(name: str, **labels: str) -> str:
        inner = ",".join(f'{k}="{val}"' for k, val in {"env": env, **labels}.items())
        return f"{name}{{{inner}}}"

    req = "http_requests_total"
    if s in ("error_rate", "availability"):
        e = v if s == "error_rate" else 1 - v
        series = [{"series": m(req, release="r1", code="2xx"), "values": _counter(100 * (1 - e))},
                  {"series": m(req, release="r1", code="5xx"), "values": _counter(100 * e)}]
        return series, v, at
    if s == "rps":
        return [{"series": m(req, release="r1", code="2xx"), "values": _counter(v)}], v, at
    if s in ("p50", "p95", "p99"):
        q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[s]
        bounds = (0.0, *LE_EDGES)
        if rule.expr.op in (">", ">="):
            k = next(i for i in range(len(bounds) - 1) if bounds[i] >= rule.expr.threshold)
        else:
            k = 0
        low, high = bounds[k], bounds[k + 1]
        out = [{"series": m("http_request_duration_seconds_bucket", release="r1", le=repr(le)),
                "values": _counter(10 if le >= high else 0)} for le in LE_EDGES]
        out.append({"series": m("http_request_duration_seconds_bucket", release="r1", le="+Inf"),
                    "values": _counter(10)})
        return out, low + (high - low) * q, at
    if s in ("cpu", "memory"):
        return [{"series": m(f"shipyard_instance_{s}_ratio", release="r1"), "values": _gauge(v)}], v, at
    if s == "restarts":
        at = max(at, 660)  # increase over 10 minutes needs them in the input
        return [{"series": m("shipyard_instance_restarts_total", release="r1"),
                 "values": _counter(v / 600)}], v, at
    if s == "up":
        return [{"series": m("shipyard_instances_up", release="r1"), "values": _gauge(v)}], v, at
    if s == "health_failures":
        return [{"series": m("shipyard_instance_health_failures", release="r1"), "values": _gauge(v)}], v, at
    if s == "backup_age":  # a success at -v: at least v old all along
        return [{"series": m("shipyard_backup_last_success_timestamp_seconds", source=src),
                 "values": _gauge(-v)}], at + v, at
    if s == "backup_failed":
        return [{"series": m("shipyard_backup_last_run_failed", source=src), "values": _gauge(v)}], v, at
    if s == "drill_missed":
        return [{"series": m("shipyard_drill_ok", source=src), "values": _gauge(1 - v)}], v, at
    if s == "cert_expires_in":  # expires v seconds after time 0, sooner every second
        return [{"series": m("shipyard_cert_expiry_timestamp_seconds"), "values": _gauge(v)}], v - at, at
    raise AssertionError(f"no input series for {s}")


GAUGES = {"cpu": "shipyard_instance_cpu_ratio", "memory": "shipyard_instance_memory_ratio",
          "up": "shipyard_instances_up", "health_failures": "shipyard_instance_health_failures"}


def good_value(rule: Rule) -> float:
    """A value that makes the comparison false."""
    t, op = rule.expr.threshold, rule.expr.op
    if op in (">", ">="):
        return t / 2 if t > 0 else t - 1
    if op in ("<", "<="):
        return t * 2 if t > 0 else t + 1
    return t + 1 if op == "==" else t


def keep_firing_case(rule: Rule) -> dict[str, Any] | None:
    """For a gauge rule with keep_firing_for: bad for 10 minutes, then good. Prometheus keeps it firing
    for keep_firing_for after the first false evaluation (with the last annotations), then resolves it."""
    name = GAUGES.get(rule.expr.series)
    if name is None or not rule.keep_firing_for_s or rule.for_s >= 540:
        return None
    bad, good = bad_value(rule), good_value(rule)
    turn = 600  # the first sample (and evaluation) where it is false
    series = [{"series": f'{name}{{env="{rule.env}",release="r1"}}',
               "values": f"{bad:g}x{turn // STEP - 1} {good:g}x{SAMPLES}"}]
    inside, after = turn + rule.keep_firing_for_s - STEP, turn + rule.keep_firing_for_s + 2 * STEP
    expected = [{"exp_labels": {"severity": rule.severity, "env": rule.env},
                 "exp_annotations": _annotations(rule, bad)}]
    return {"name": f"{rule.name} on {rule.env}: keep_firing_for", "interval": f"{STEP}s", "input_series": series,
            "alert_rule_test": [{"eval_time": _dur(inside), "alertname": rule.name, "exp_alerts": expected},
                                {"eval_time": _dur(after), "alertname": rule.name, "exp_alerts": []}]}


def _annotations(rule: Rule, value: float) -> dict[str, str]:
    out = {"summary": _render(rule, value), "shipyard_expr": rule.expr.text}
    if rule.runbook_url:
        out["runbook_url"] = rule.runbook_url
    return out


def _dur(seconds: float) -> str:
    return f"{int(seconds)}s"


def _render(rule: Rule, value: float) -> str:
    text = annotation(rule.summary, rule)
    return re.sub(r"\{\{ \$value \| [^}]*\}\}", lambda _: formatted(rule, value), text)


def promtool_tests(rules: list[Rule], rule_file: str) -> dict[str, Any]:
    """The document for `promtool test rules` (one test group per rule)."""
    tests = []
    for r in rules:
        series, value, at = case(r)
        expected = [{"exp_labels": {"severity": r.severity, "env": r.env}, "exp_annotations": _annotations(r, value)}]
        checks = [{"eval_time": _dur(at), "alertname": r.name, "exp_alerts": expected}]
        if r.for_s >= 60 and r.expr.series != "restarts":
            # Pending, not firing, until `for` has passed (rates are true from the second sample on).
            checks.append({"eval_time": _dur(r.for_s - 15), "alertname": r.name, "exp_alerts": []})
        tests.append({"name": f"{r.name} on {r.env}", "interval": f"{STEP}s", "input_series": series,
                      "alert_rule_test": checks})
        if (keep := keep_firing_case(r)) is not None:
            tests.append(keep)
    return {"rule_files": [rule_file], "evaluation_interval": f"{STEP}s", "tests": tests}
