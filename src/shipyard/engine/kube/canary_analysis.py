"""A canary's judgement on Kubernetes, pure: Argo Rollouts ``AnalysisTemplate`` objects whose Prometheus
metrics are the environment's ``[rollback]`` triggers and the canary judgement's thresholds.

The queries read the series shipyard's own router exports (``http_requests_total{env, release, code}``
and ``http_request_duration_seconds_bucket{env, release, le}``): on a cluster they come from the app,
a sidecar or the ingress, relabelled so that ``env`` and ``release`` carry the pods' ``shipyard.dev/env``
and ``shipyard.dev/release`` labels (docs/kubernetes.md shows the relabelling). The canary and stable
release ids reach a template as the arguments ``canary`` and ``stable``.

How each kind of condition maps:

- A trigger (``error_rate = { above = "5%", for = "1m" }``) is one metric whose query is the trailing
  minimum (``above``) or maximum (``below``) of the value over ``for`` — it fails only when the value was
  beyond the threshold for the whole of ``for``, as on one machine. Only a ``failureCondition``: no data is
  not a failure (a condition does not fire on no data).
- The judgement compares canary with stable over the step's duration: the canary's error rate may exceed
  stable's by max(``error_tolerance``, ``error_tolerance_relative`` × stable's), its median latency by
  max(``latency_tolerance_min``, ``latency_tolerance`` × stable's). The query is the excess beyond that
  allowance, and only exists once both releases have ``min_samples`` requests in the window; both a
  success and a failure condition, so too few requests is *Inconclusive* (never a silent pass), and
  ``inconclusive_limit`` inconclusive measurements pause the rollout for a human. The local judgement's
  significance tests have no PromQL counterpart: on Kubernetes the tolerances alone decide.
- ``cpu``, ``memory`` and ``health_failures`` are per-instance readings of the local supervisor; they are
  not mapped (``unmapped`` names them) — write them as ``[rollback] prometheus`` queries over the
  cluster's own metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.primitives.spec.rollout import AnalysisSpec, CanarySpec, LatencyAbove, RollbackSpec

API_VERSION = "argoproj.io/v1alpha1"
REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds_bucket"
ERROR_CODES = "5xx|none"  # answered 5xx, or no answer at all (refused, reset, timeout)
MAX_RESOLUTION = 10  # seconds: the rate window of a trigger, as the local analysis' resolution
UNMAPPED = ("cpu", "memory", "health_failures")
# An empty answer (no series) or NaN (no requests in the window) is no value.
HAS_VALUE = "len(result) > 0 && !isNaN(result[0])"


def _secs(value: float) -> int:
    return max(1, math.ceil(value))


def _num(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class Queries:
    """PromQL over one environment's series; ``rel`` is a release id or an Argo argument reference."""

    env: str

    def sel(self, rel: str, extra: str = "") -> str:
        return f'{{env="{self.env}",release="{rel}"{extra}}}'

    def requests(self, rel: str, window: int) -> str:
        return f"sum(rate({REQUESTS}{self.sel(rel)}[{window}s]))"

    def error_rate(self, rel: str, window: int) -> str:
        errors = f'sum(rate({REQUESTS}{self.sel(rel, f",code=~{chr(34)}{ERROR_CODES}{chr(34)}")}[{window}s]))'
        return f"(({errors} or vector(0)) / {self.requests(rel, window)})"

    def quantile(self, q: float, rel: str, window: int) -> str:
        return f"histogram_quantile({q:g}, sum by (le) (rate({DURATION}{self.sel(rel)}[{window}s])))"

    def count(self, rel: str, window: int) -> str:
        return f"sum(increase({REQUESTS}{self.sel(rel)}[{window}s]))"


def _held(expr: str, above: bool, for_: float) -> tuple[str, int]:
    """The value's trailing min (above) or max (below) over ``for``: beyond the threshold throughout."""
    span = _secs(for_)
    res = min(MAX_RESOLUTION, span)
    return f"{'min' if above else 'max'}_over_time(({expr})[{span}s:{res}s])", res


def _trigger(name: str, address: str, query: str, threshold: float, above: bool, interval: int) -> dict[str, Any]:
    op = ">" if above else "<"
    return {"name": name, "interval": f"{interval}s", "failureLimit": 0,
            "failureCondition": f"{HAS_VALUE} && result[0] {op} {_num(threshold)}",
            "provider": {"prometheus": {"address": address, "query": query, "timeout": 10}}}


def trigger_metrics(spec: RollbackSpec, env: str, address: str, rel: str = "{{args.canary}}") -> list[dict[str, Any]]:
    """One failure-only metric per ``[rollback]`` (or named analysis) condition, on the canary."""
    q, out = Queries(env), []
    if spec.error_rate is not None:
        t = spec.error_rate
        query, res = _held(q.error_rate(rel, min(MAX_RESOLUTION, _secs(t.for_))), True, t.for_)
        out.append(_trigger("error-rate", address, query, t.above, True, res))
    for name, quant in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        lat: LatencyAbove | None = getattr(spec, name)
        if lat is not None:
            query, res = _held(q.quantile(quant, rel, min(MAX_RESOLUTION, _secs(lat.for_))), True, lat.for_)
            out.append(_trigger(f"latency-{name}", address, query, lat.above, True, res))
    if spec.request_rate is not None:
        r = spec.request_rate
        query, res = _held(q.requests(rel, min(MAX_RESOLUTION, _secs(r.for_))), False, r.for_)
        out.append(_trigger("request-rate", address, query, r.below, False, res))
    for i, p in enumerate(spec.prometheus):
        threshold, above = (p.above, True) if p.above is not None else (p.below or 0.0, False)
        query, res = _held(p.query, above, p.for_)
        out.append(_trigger(f"prometheus-{i}", p.url, query, threshold, above, res))
    return out


def judgement_metrics(canary: CanarySpec, env: str, address: str, window: float) -> list[dict[str, Any]]:
    """Canary against stable over ``window``: the excess beyond the tolerance; > 0 fails."""
    q, w = Queries(env), _secs(window)
    c, s = "{{args.canary}}", "{{args.stable}}"
    enough = (f" and on() ({q.count(c, w)} >= {canary.min_samples})"
              f" and on() ({q.count(s, w)} >= {canary.min_samples})")
    errors = (f"({q.error_rate(c, w)} - {q.error_rate(s, w)} - clamp_min({_num(canary.error_tolerance_relative)} * "
              f"{q.error_rate(s, w)}, {_num(canary.error_tolerance)})){enough}")
    median_s = q.quantile(0.5, s, w)
    latency = (f"({q.quantile(0.5, c, w)} - {median_s} - clamp_min({_num(canary.latency_tolerance)} * {median_s}, "
               f"{_num(canary.latency_tolerance_min)})){enough}")
    interval = min(MAX_RESOLUTION, w)
    limit = max(1, math.ceil(canary.inconclusive_limit / interval))
    return [{"name": name, "interval": f"{interval}s", "failureLimit": 0, "inconclusiveLimit": limit,
             "successCondition": f"{HAS_VALUE} && result[0] <= 0",
             "failureCondition": f"{HAS_VALUE} && result[0] > 0",
             "provider": {"prometheus": {"address": address, "query": query, "timeout": 10}}}
            for name, query in (("judgement-errors", errors), ("judgement-latency", latency))]


def unmapped(spec: RollbackSpec | None) -> list[str]:
    """The conditions set that no AnalysisTemplate can carry (reported by plan and deploy)."""
    if spec is None:
        return []
    return [name for name in UNMAPPED if getattr(spec, name) is not None]


def _with_count(metrics: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """A step's analysis ends: each metric measures ⌈duration / interval⌉ times."""
    out = []
    for m in metrics:
        interval = int(m["interval"].rstrip("s"))
        out.append({**m, "count": max(1, math.ceil(duration / interval))})
    return out


def template(name: str, namespace: str, labels: Mapping[str, str], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AnalysisTemplate",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"args": [{"name": "canary"}, {"name": "stable"}], "metrics": metrics}}


def background_template(canary: CanarySpec, rollback: RollbackSpec | None, env: str, address: str) -> list[dict[str, Any]]:
    """What runs while the canary takes traffic: the judgement and the ``[rollback]`` triggers."""
    metrics = judgement_metrics(canary, env, address, canary.step_duration)
    return metrics + (trigger_metrics(rollback, env, address) if rollback is not None else [])


def step_template(canary: CanarySpec, name: str, env: str, address: str) -> list[dict[str, Any]]:
    """A ``{ analysis = NAME }`` step: the judgement plus that analysis' own conditions, for its duration."""
    spec: AnalysisSpec | None = canary.analysis.get(name)
    duration = spec.duration if spec is not None and spec.duration is not None else canary.step_duration
    metrics = judgement_metrics(canary, env, address, duration)
    if spec is not None:
        metrics += trigger_metrics(spec, env, address)
    return _with_count(metrics, duration)
