"""The metric history, pure: per-second samples → 10-second points → 1-minute points → query steps.

A ``Point`` is one env × release over ``[t, t + step)``. Raw points (10 s) keep their latency histogram,
so anything computed from them — a minute point, a ``--step 1m`` query, an alert's P95 — merges bucket
counts and takes the quantile once (exact to the histogram's 1/64). Minute points keep the quantiles and
drop the histogram (it is what makes a raw point large); a query coarser than a minute over minute
points reports each quantile as the worst minute's of the step.

Gauges (CPU, RSS, memory share, instances up, health failures) are readings taken when the point was
written; over a step they take the worst value (max; ``up``: min). Restarts are counted per point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shipyard.engine.analysis.measurements import Sample
from shipyard.primitives.metrics import merge_counts, quantile

RAW_STEP = 10
MINUTE_STEP = 60


@dataclass(frozen=True)
class InstanceReading:
    """One instance as the supervisor sees it when a point is written."""

    instance: str
    release: str
    up: bool  # alive and ready
    cpu: float | None = None  # cores
    rss: int | None = None  # bytes
    memory_limit: int | None = None
    health_failures: int = 0
    restarts: int = 0  # total since the control plane started supervising it


@dataclass(frozen=True)
class Point:
    env: str
    release: str
    t: int
    step: int
    requests: int = 0
    errors: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    cpu: float | None = None
    rss: int | None = None
    memory: float | None = None
    up: int = 0
    instances: int = 0
    health_failures: int = 0
    restarts: int = 0
    hist: Mapping[int, int] | None = field(default=None, compare=False)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def availability(self) -> float | None:
        return None if self.requests == 0 else 1.0 - self.errors / self.requests

    @property
    def rps(self) -> float:
        return self.requests / self.step

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "release": self.release, "step": self.step, "requests": self.requests,
                "errors": self.errors, "rps": round(self.rps, 4), "error_rate": self.error_rate,
                "availability": self.availability, "p50": self.p50, "p95": self.p95, "p99": self.p99,
                "cpu": self.cpu, "rss": self.rss, "memory": self.memory, "up": self.up,
                "instances": self.instances, "health_failures": self.health_failures, "restarts": self.restarts}


def _quantiles(hist: Mapping[int, int]) -> tuple[float | None, float | None, float | None]:
    return quantile(hist, 0.50), quantile(hist, 0.95), quantile(hist, 0.99)


def raw_points(env: str, samples: Iterable[Sample], readings: Sequence[InstanceReading],
               restarts_before: Mapping[str, int], newest: int | None) -> list[Point]:
    """Raw points of every 10-second bucket the (whole-bucket) ``samples`` cover.

    ``readings`` describe the bucket starting at ``newest`` (older buckets, written late after an
    outage, have traffic only); ``restarts_before`` is each instance's restart total at the last point.
    """
    traffic: dict[tuple[str, int], tuple[int, int, list[Mapping[int, int]]]] = {}
    for s in samples:
        key = (s.release, s.t - s.t % RAW_STEP)
        req, err, hists = traffic.get(key, (0, 0, []))
        hists.append(s.latency)
        traffic[key] = (req + s.requests, err + s.errors, hists)
    by_rel: dict[str, list[InstanceReading]] = {}
    for r in readings:
        by_rel.setdefault(r.release, []).append(r)
    if newest is not None:
        for rel in by_rel:
            traffic.setdefault((rel, newest), (0, 0, []))
    out: list[Point] = []
    for (rel, t), (req, err, hists) in sorted(traffic.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hist = merge_counts(hists)
        p50, p95, p99 = _quantiles(hist)
        point = Point(env, rel, t, RAW_STEP, req, err, p50, p95, p99, hist=hist)
        if t == newest and rel in by_rel:
            point = _with_readings(point, by_rel[rel], restarts_before)
        out.append(point)
    return out


def _with_readings(p: Point, readings: list[InstanceReading], before: Mapping[str, int]) -> Point:
    cpus = [r.cpu for r in readings if r.cpu is not None]
    rss = [r.rss for r in readings if r.rss is not None]
    shares = [r.rss / r.memory_limit for r in readings if r.rss is not None and r.memory_limit]
    return replace(p, cpu=max(cpus) if cpus else None, rss=sum(rss) if rss else None,
                   memory=max(shares) if shares else None, up=sum(r.up for r in readings),
                   instances=len(readings), health_failures=max(r.health_failures for r in readings),
                   restarts=sum(max(0, r.restarts - before.get(r.instance, r.restarts)) for r in readings))


def combine(points: Sequence[Point], env: str, release: str, t: int, step: int, *, keep_hist: bool) -> Point:
    """Several points (one release, or several) as one over ``[t, t + step)``."""
    hists = [p.hist for p in points if p.hist is not None]
    exact = len(hists) == len(points)
    hist = merge_counts(hists) if exact else None

    def worst(name: str) -> Any:
        return max((v for p in points if (v := getattr(p, name)) is not None), default=None)

    p50, p95, p99 = _quantiles(hist) if hist is not None else (worst("p50"), worst("p95"), worst("p99"))

    read = [p for p in points if p.instances]
    return Point(env, release, t, step, sum(p.requests for p in points), sum(p.errors for p in points),
                 p50, p95, p99, cpu=worst("cpu"), rss=worst("rss"), memory=worst("memory"),
                 up=min((p.up for p in read), default=0), instances=max((p.instances for p in read), default=0),
                 health_failures=max((p.health_failures for p in points), default=0),
                 restarts=sum(p.restarts for p in points), hist=hist if keep_hist else None)


def downsample(points: Iterable[Point], step: int, *, keep_hist: bool = False) -> list[Point]:
    """Points of each release folded into ``step``-second buckets (aligned to multiples of ``step``)."""
    groups: dict[tuple[str, str, int], list[Point]] = {}
    for p in points:
        groups.setdefault((p.env, p.release, p.t - p.t % step), []).append(p)
    return [combine(g, env, rel, t, step, keep_hist=keep_hist)
            for (env, rel, t), g in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1]))]


def env_total(points: Iterable[Point], step: int) -> list[Point]:
    """Every release together, per step: what an environment's alert or graph reads.

    Traffic adds up; gauges take the worst release, except ``up`` and ``instances``, which add up over the
    releases present at the same instant (the releases of a blue-green or canary serve side by side)."""
    per_t: dict[int, list[Point]] = {}
    for p in downsample(points, step, keep_hist=True):
        per_t.setdefault(p.t, []).append(p)
    out = []
    for t, group in sorted(per_t.items()):
        total = combine(group, group[0].env, "*", t, step, keep_hist=True)
        out.append(replace(total, up=sum(p.up for p in group), instances=sum(p.instances for p in group)))
    return out
