"""The overview's last hour of traffic per environment, from the 10-second history, kept in memory.

Reading every environment's hour again for each page cost up to 1.5 s on a loaded machine with 10
environments (bench/dashboard_overview.py: the read and the histogram decoding compete with the recorder
and the alert evaluator in the same process). So the points are kept and only those newer than the newest
kept are read (a point is written once its 10 seconds are over); the whole hour is read again every
``full_every`` seconds, which picks up points written late (after the router was away). The figures are
computed once per 10-second bucket: the history gains at most a point per bucket and release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.control.metrics_recorder import point_of
from shipyard.engine.alerting.history import RAW_STEP, Point, combine
from shipyard.primitives.store import Store

WINDOW_S = 3600


@dataclass
class _Kept:
    full_at: float
    points: list[Point] = field(default_factory=list)
    bucket: int = -1
    figures: dict[str, Any] | None = None


class LastHour:
    def __init__(self, store: Store, window_s: int = WINDOW_S, full_every: float = 300.0) -> None:
        self.store, self.window_s, self.full_every = store, window_s, full_every
        self._kept: dict[str, _Kept] = {}
        self.reads = {"full": 0, "newer": 0}  # what a test or the bench can check

    def figures(self, env: str, now: float) -> dict[str, Any] | None:
        """{rps, error_rate, p95} over the last hour (histograms merged: P95 exact to the histogram), or None
        without a point in it."""
        bucket = int(now) // RAW_STEP
        kept = self._kept.get(env)
        if kept is not None and kept.bucket == bucket:
            return kept.figures
        start = now - self.window_s
        if kept is None or now - kept.full_at >= self.full_every:
            kept = _Kept(now, [point_of(r, RAW_STEP) for r in self.store.read_points("raw", env, start, now)])
            self.reads["full"] += 1
            self._kept[env] = kept
        else:
            newest = max((p.t for p in kept.points), default=int(start) - 1)
            kept.points += [point_of(r, RAW_STEP) for r in self.store.read_points("raw", env, newest + 1, now)]
            kept.points = [p for p in kept.points if p.t >= start]
            self.reads["newer"] += 1
        kept.bucket = bucket
        kept.figures = None
        if kept.points:
            total = combine(kept.points, env, "*", int(now), self.window_s, keep_hist=False)
            kept.figures = {"rps": total.requests / self.window_s, "error_rate": total.error_rate, "p95": total.p95}
        return kept.figures
