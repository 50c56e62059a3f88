"""Rollback conditions (hard limits) and what ``for`` means.

A condition is evaluated at ``end`` (whole seconds, exclusive). With ``F = max(1, ceil(for))`` and the
resolution ``R = min(RESOLUTION, F)``:

    it fires iff, for EVERY second p in [end − F, end), the value computed over the trailing
    sub-window [p − R + 1, p + 1) is defined and strictly beyond the threshold.

So "holds for 5m" is checked once per second, as Prometheus does with ``for:`` over a ``rate[R]``
expression, and the data looked at is ``[end − F − R + 1, end)``. Consequences, on purpose:

- A value exactly at the threshold does not fire (``above`` is ``>``, ``below`` is ``<``).
- No data is not firing: a point whose sub-window has no sample, no requests (for error rate and
  latency) or no reading (CPU, memory) is undefined, so a gap of R seconds or more anywhere in the
  window — or a window that began before the data did — keeps the condition quiet. Gaps shorter than R
  are bridged by the sub-window (the collector can miss a pull without resetting a 5-minute trigger).
- ``request_rate`` counts a second with a sample and zero requests as data (0 rps): that is exactly
  what it looks for.

``health_failures = N`` has no window: it fires when the latest reading of any instance (within the last
R seconds) shows N or more consecutive failed health checks. ``restarts`` (the canary's crash check,
``canary.max_restarts``) works the same way on restarts counted since the analysis began.

A PromQL condition is read from periodic query results instead of samples; see ``evaluate_prometheus``.

Scope: error rate, latency and request rate are judged per release (instance samples are rolled up);
CPU, memory and health per instance, and any instance firing fires the condition for its release.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from shipyard.engine.analysis.measurements import BucketBounds, Sample, Window, check_layout, rollup
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.rollout import RollbackSpec

# Trailing sub-window (seconds) each per-second point is computed over: smooths a second with two
# requests, still short enough that a 30-second condition means 30 seconds.
RESOLUTION = 10
# Largest gap between two Prometheus query results that still counts as covered.
PROMETHEUS_MAX_GAP = 30.0

ConditionKind = Literal[
    "error_rate", "p50", "p95", "p99", "request_rate", "cpu", "memory", "health_failures", "restarts",
    "prometheus",
]
Direction = Literal["above", "below", "at_least"]
_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
RELEASE_KINDS = frozenset({"error_rate", "p50", "p95", "p99", "request_rate"})
INSTANCE_KINDS = frozenset({"cpu", "memory", "health_failures", "restarts"})
_LATEST_KINDS = frozenset({"health_failures", "restarts"})


@dataclass(frozen=True)
class Condition:
    kind: ConditionKind
    threshold: float
    direction: Direction
    for_s: float = 0.0
    url: str | None = None  # prometheus only
    query: str | None = None  # prometheus only

    @property
    def points(self) -> int:
        """F: the number of per-second evaluation points."""
        return max(1, math.ceil(self.for_s))

    @property
    def resolution(self) -> int:
        return min(RESOLUTION, self.points)

    def format_value(self, value: float | None) -> str:
        if value is None:
            return "no data"
        if self.kind in ("error_rate", "memory"):
            return _percent(value)
        if self.kind == "cpu":
            return f"{_percent(value)} of a core"
        if self.kind in _QUANTILES:
            return format_duration(value) if value >= 1 else f"{value * 1000:.0f}ms"
        if self.kind == "request_rate":
            return f"{value:.3g} req/s"
        if self.kind == "health_failures":
            return f"{value:.0f} failed checks"
        if self.kind == "restarts":
            return f"{value:.0f} restarts"
        return f"{value:.6g}"

    def describe(self) -> str:
        """``error_rate above 5% for 5m`` — how ``--plan`` lists a trigger."""
        if self.kind == "health_failures":
            return f"health_failures: {self.threshold:.0f} consecutive failed health checks on an instance"
        if self.kind == "restarts":
            return f"restarts: an instance restarted (crashed) {self.threshold:.0f} time(s) during the analysis"
        name = f"prometheus {self.query!r} at {self.url}" if self.kind == "prometheus" else self.kind
        threshold = self.format_value(self.threshold)
        if self.kind == "cpu":
            threshold = f"{_percent(self.threshold)} (of a core, per instance)"
        elif self.kind == "memory":
            threshold = f"{_percent(self.threshold)} (of its memory limit, per instance)"
        return f"{name} {self.direction} {threshold} for {format_duration(self.for_s)}"

    def beyond(self, value: float) -> bool:
        if self.direction == "above":
            return value > self.threshold
        if self.direction == "below":
            return value < self.threshold
        return value >= self.threshold


def _percent(v: float) -> str:
    return f"{v * 100:.3g}%"


def conditions_from_spec(spec: RollbackSpec | None) -> tuple[Condition, ...]:
    if spec is None:
        return ()
    out: list[Condition] = []
    if spec.error_rate:
        out.append(Condition("error_rate", spec.error_rate.above, "above", spec.error_rate.for_))
    for kind in ("p50", "p95", "p99"):
        lat = getattr(spec, kind)
        if lat is not None:
            out.append(Condition(kind, lat.above, "above", lat.for_))
    if spec.request_rate:
        out.append(Condition("request_rate", spec.request_rate.below, "below", spec.request_rate.for_))
    if spec.cpu:
        out.append(Condition("cpu", spec.cpu.above, "above", spec.cpu.for_))
    if spec.memory:
        out.append(Condition("memory", spec.memory.above, "above", spec.memory.for_))
    if spec.health_failures is not None:
        out.append(Condition("health_failures", float(spec.health_failures), "at_least"))
    for prom in spec.prometheus:
        if prom.above is not None:
            out.append(Condition("prometheus", prom.above, "above", prom.for_, prom.url, prom.query))
        elif prom.below is not None:
            out.append(Condition("prometheus", prom.below, "below", prom.for_, prom.url, prom.query))
    return tuple(out)


@dataclass(frozen=True)
class Evaluation:
    """One condition on one scope at one moment, with what was observed (for history and the live view)."""

    condition: Condition
    release: str | None
    instance: str | None
    firing: bool
    start: int | float  # the window looked at: [start, end)
    end: int | float
    value: float | None  # over the whole `for` window (the latest reading for health failures)
    held_s: float  # how long (seconds, up to `for`) the condition has held up to `end`
    reason: str

    def to_json(self) -> dict[str, object]:
        c = self.condition
        return {
            "condition": c.kind,
            "describe": c.describe(),
            "threshold": c.threshold,
            "direction": c.direction,
            "for": c.for_s,
            "release": self.release,
            "instance": self.instance,
            "firing": self.firing,
            "window": [self.start, self.end],
            "value": self.value,
            "held_s": self.held_s,
            "reason": self.reason,
        }


def _point_value(cond: Condition, w: Window) -> float | None:
    if not w.by_second:
        return None
    k = cond.kind
    if k == "error_rate":
        return w.error_rate
    if k in _QUANTILES:
        return w.latency(_QUANTILES[k])
    if k == "request_rate":
        return w.request_rate
    if k == "cpu":
        return w.cpu
    if k == "memory":
        return w.memory_share
    raise ValueError(f"{k} is not a windowed sample condition")


def evaluate(
    cond: Condition,
    samples: Iterable[Sample],
    end: int,
    bounds: BucketBounds | None = None,
    *,
    release: str | None = None,
    instance: str | None = None,
) -> Evaluation:
    """Evaluate one sample condition over the samples of ONE scope (a release or an instance).

    ``bounds``: the router's bucket layout or None (see ``measurements.check_layout``).
    """
    check_layout(bounds)
    if cond.kind == "prometheus":
        raise ValueError("use evaluate_prometheus for PromQL conditions")
    r = cond.resolution
    if cond.kind in _LATEST_KINDS:
        w = Window.of(samples, end - r, end)
        latest = w.health_failures if cond.kind == "health_failures" else w.restarts
        firing = latest is not None and cond.beyond(latest)
        value = None if latest is None else float(latest)
        what = "in a row" if cond.kind == "health_failures" else "since the analysis began"
        reason = (
            f"{cond.format_value(value)} {what} (limit {cond.threshold:.0f})"
            if latest is not None
            else f"no {cond.kind} reading"
        )
        return Evaluation(cond, release, instance, firing, w.start, w.end, value, 0.0, reason)

    f = cond.points
    window = Window.of(samples, end - f - r + 1, end)
    held = 0
    # Newest first, so the usual quiet case costs one point.
    for p in range(end - 1, end - f - 1, -1):
        v = _point_value(cond, window.sub(p - r + 1, p + 1))
        if v is None or not cond.beyond(v):
            break
        held += 1
    firing = held == f
    whole = _point_value(cond, window.sub(end - f, end))
    shown = cond.format_value(whole)
    limit = cond.format_value(cond.threshold)
    if firing:
        reason = f"{cond.kind} {shown} {cond.direction} {limit} for {format_duration(cond.for_s)}"
    elif held:
        reason = f"{cond.kind} {cond.direction} {limit} for {held}s of {format_duration(f)} (now {shown})"
    else:
        reason = f"{cond.kind} {shown} (limit {cond.direction} {limit})"
    return Evaluation(cond, release, instance, firing, end - f, end, whole, float(held), reason)


def evaluate_all(
    conditions: Sequence[Condition],
    samples: Iterable[Sample],
    end: int,
    bounds: BucketBounds | None = None,
    releases: Iterable[str] | None = None,
) -> list[Evaluation]:
    """Every sample condition on every scope it applies to (PromQL conditions are left out).

    Release conditions run on each release's rollup; instance conditions on each instance. ``releases``
    limits the evaluation (e.g. to the canary).
    """
    check_layout(bounds)
    samples = list(samples)
    wanted = set(releases) if releases is not None else {s.release for s in samples}
    by_release: dict[str, list[Sample]] = {}
    for s in rollup(s for s in samples if s.release in wanted):
        by_release.setdefault(s.release, []).append(s)
    by_instance: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        if s.release in wanted and s.instance is not None:
            by_instance.setdefault((s.release, s.instance), []).append(s)
    out: list[Evaluation] = []
    for cond in conditions:
        if cond.kind in RELEASE_KINDS:
            for rel in sorted(wanted):
                out.append(evaluate(cond, by_release.get(rel, []), end, release=rel))
        elif cond.kind in INSTANCE_KINDS:
            for (rel, inst), group in sorted(by_instance.items()):
                out.append(evaluate(cond, group, end, release=rel, instance=inst))
    return out


def firing(evaluations: Iterable[Evaluation]) -> list[Evaluation]:
    return [e for e in evaluations if e.firing]


@dataclass(frozen=True)
class Reading:
    """One PromQL query result at time ``t`` (None: the query returned no series)."""

    t: float
    value: float | None


def evaluate_prometheus(
    cond: Condition,
    readings: Sequence[Reading],
    end: float,
    max_gap: float = PROMETHEUS_MAX_GAP,
) -> Evaluation:
    """A PromQL condition fires iff every reading in ``[end − for, end)`` is defined and beyond the
    threshold, and the readings cover the window: no gap longer than ``max_gap`` between ``end − for``,
    consecutive readings and ``end``."""
    start = end - max(cond.for_s, 0.0)
    inside = sorted((r for r in readings if start <= r.t < end), key=lambda r: r.t)
    times = [start, *(r.t for r in inside), end]
    covered = bool(inside) and all(b - a <= max_gap for a, b in zip(times, times[1:], strict=False))
    held_since: float | None = None
    for r in reversed(inside):
        if r.value is None or not cond.beyond(r.value):
            break
        held_since = r.t
    all_beyond = bool(inside) and all(r.value is not None and cond.beyond(r.value) for r in inside)
    fires = covered and all_beyond
    latest = inside[-1].value if inside else None
    limit = cond.format_value(cond.threshold)
    if fires:
        reason = f"{cond.query} = {cond.format_value(latest)} {cond.direction} {limit} for {format_duration(cond.for_s)}"
    elif not inside:
        reason = f"{cond.query}: no readings in the window"
    elif not covered:
        reason = f"{cond.query}: readings do not cover the window (gap over {format_duration(max_gap)})"
    else:
        reason = f"{cond.query} = {cond.format_value(latest)} (limit {cond.direction} {limit})"
    held = cond.for_s if fires else 0.0 if held_since is None else min(end - held_since, cond.for_s)
    return Evaluation(cond, None, None, fires, start, end, latest, held, reason)

