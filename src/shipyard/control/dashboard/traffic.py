"""The overview's last hour of traffic per environment, from the 10-second history, kept in memory.

Reading every environment's hour again for each page cost up to 1.5 s on a loaded machine with 10
environments (bench/dashboard_overview.py: the read and the histogram decoding compete with the recorder
and the alert evaluator in the same process). So the points are kept and only those newer than the newest
kept are read (a point is written once its 10 seconds are over); the whole hour is read again every
``full_every`` seconds, which picks up points written late (after the router was away). The figures are
computed once per 10-second bucket: the history gains at most a point per bucket and release.

The dashboard's server keeps them fresh in the background (``keep_fresh``); a page shows the latest made
(``latest``), and reads an environment's hour itself only when it was never read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.control.metrics_recorder import point_of
from shipyard.engine.alerting.history import RAW_STEP, Point, combine
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store

WINDOW_S = 3600
log = logging.getLogger("shipyard.control")


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
        self._lock = threading.Lock()  # the background refresh and a page run in worker threads
        self.reads = {"full": 0, "newer": 0}  # what a test or the bench can check

    def figures(self, env: str, now: float) -> dict[str, Any] | None:
        """{rps, error_rate, p95} over the last hour (histograms merged: P95 exact to the histogram), or None
        without a point in it."""
        with self._lock:
            return self._figures(env, now)

    def latest(self, env: str, now: float) -> dict[str, Any] | None:
        """What a page shows: the figures of the last refresh (at most a bucket and 1.5 s old), made now only
        for an environment not read yet (folding an hour of histograms per environment at each bucket cost
        a page 2.5 times ``GET /v1/status`` on a loaded machine: bench/dashboard_overview.py)."""
        with self._lock:
            kept = self._kept.get(env)
            return kept.figures if kept is not None else self._figures(env, now)

    async def keep_fresh(self, clock: Clock, envs: Callable[[], list[str]]) -> None:
        """Forever: every environment's figures, 1.5 s into each 10-second bucket (its points written)."""
        while True:
            await clock.sleep(RAW_STEP + 1.5 - clock.time() % RAW_STEP)
            try:
                await asyncio.to_thread(self.refresh, envs(), clock.time())
            except ShipyardError:  # a broken spec: the pages say so; try again next bucket
                continue
            except Exception:  # a database hiccup must not end the refresh (pages would read themselves)
                log.exception("dashboard: refreshing the last hour of traffic failed")

    def refresh(self, envs: list[str], now: float) -> None:
        for env in envs:
            self.figures(env, now)

    def _figures(self, env: str, now: float) -> dict[str, Any] | None:
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
