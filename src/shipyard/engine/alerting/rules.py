"""Alert rules: the shipped defaults, ``[[alerts]]`` from the spec, one ``Rule`` per rule × environment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.alerting import SERIES, AlertExpr, AlertSpec, parse_expr, render_summary
from shipyard.primitives.spec.durations import format_duration

# The plans' rules (docs/alerts.md says why each threshold and `for`). The traffic ones read a minute: with a
# `for` of minutes, one noisy 10-second window under the threshold would send them back to inactive (and the
# 15 s that a minute's average needs to cross is small beside the `for`). A [[alerts]] rule of the same name
# replaces one for the environments it covers; `[metrics] default_alerts = false` drops them all.
DEFAULTS: tuple[AlertSpec, ...] = tuple(AlertSpec.model_validate(d) for d in (
    {"name": "HighErrorRate", "expr": "error_rate[1m] > 5%", "for": "5m", "keep_firing_for": "2m",
     "severity": "critical", "summary": "{{ env }}: {{ value }} of requests fail (over 5% for 5m)"},
    {"name": "HighLatency", "expr": "p95[1m] > 2s", "for": "3m", "severity": "warning",
     "summary": "{{ env }}: P95 latency is {{ value }} (over 2s for 3m)"},
    {"name": "HighMemory", "expr": "memory > 90%", "for": "5m", "severity": "warning",
     "summary": "{{ env }}: an instance uses {{ value }} of its memory"},
    {"name": "InstanceDown", "expr": "up < 1", "for": "1m", "severity": "critical",
     "summary": "{{ env }}: no instance is up"},
    {"name": "BackupFailed", "expr": "backup_failed > 0", "severity": "critical",
     "summary": "{{ env }}: the newest backup of {{ value }} source(s) failed"},
    {"name": "BackupTooOld", "expr": "backup_age > 26h", "severity": "critical",
     "summary": "{{ env }}: the newest good backup is {{ value }} old (a daily schedule allows 26h)"},
    {"name": "DrillMissed", "expr": "drill_missed > 0", "severity": "critical",
     "summary": "{{ env }}: the newest restore drill missed its objectives"},
))


@dataclass(frozen=True)
class Rule:
    name: str
    env: str
    expr: AlertExpr
    for_s: float
    keep_firing_for_s: float
    severity: str
    summary: str
    runbook_url: str | None
    default: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.env)

    def render(self, value: float | None) -> str:
        return render_summary(self.summary, {
            "alertname": self.name, "env": self.env, "expr": self.expr.text, "severity": self.severity,
            "value": format_value(self.expr.series, value),
            "threshold": format_value(self.expr.series, self.expr.threshold)})

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "env": self.env, "expr": self.expr.text, "for": self.for_s,
                "keep_firing_for": self.keep_firing_for_s, "severity": self.severity,
                "runbook_url": self.runbook_url, "default": self.default}


def format_value(series: str, value: float | None) -> str:
    if value is None:
        return "no data"
    sdef = SERIES.get(series)  # "promql": a query's sample, unit unknown
    unit = sdef.unit if sdef is not None else "number"
    if unit == "fraction":
        return f"{value * 100:.3g}%"
    if unit == "seconds":
        return format_duration(value)
    return f"{value:g}"


def _rule(spec: AlertSpec, env: str, default: bool) -> Rule:
    return Rule(spec.name, env, parse_expr(spec.expr), spec.for_, spec.keep_firing_for, spec.severity,
                spec.summary, spec.runbook_url, default)


def rules_for(spec: Spec, envs: Iterable[str] | None = None) -> list[Rule]:
    """Every rule of every environment (or of ``envs``): environment-specific rules win over rules for
    every environment, which win over the defaults, name by name."""
    names = sorted(envs) if envs is not None else spec.env_names
    out: list[Rule] = []
    for env in names:
        chosen: dict[str, Rule] = {}
        if spec.metrics.default_alerts:
            chosen.update({d.name: _rule(d, env, True) for d in DEFAULTS})
        chosen.update({a.name: _rule(a, env, False) for a in spec.alerts if a.env is None})
        chosen.update({a.name: _rule(a, env, False) for a in spec.alerts if a.env == env})
        out += chosen.values()
    return out
