"""The history recorder: every 10 seconds, every environment's router slices → raw points in the store.

Always on (not only during a canary). Each tick pulls the whole 10-second buckets since its cursor from
the router's ``slices`` op (the router keeps 15 minutes, so a recorder that was down catches up on
what it missed, up to that), turns them into samples (``collector.samples_from_slices``, the same errors
as the analysis counts), folds them into one raw point per release (``engine.alerting.history``) with
the supervisor's readings (CPU, RSS, up, health, restarts), and writes them. Complete minutes are
compacted into minute points; both resolutions are pruned to their retention. Each reply also goes to
``on_reply`` (the Prometheus counters).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import psutil

from shipyard.control.collector import SlicesSource, samples_from_slices
from shipyard.control.specwatch import SpecWatch
from shipyard.control.supervisor import Supervisor
from shipyard.engine.alerting.history import (
    MINUTE_STEP,
    RAW_STEP,
    InstanceReading,
    Point,
    downsample,
    raw_points,
)
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.metrics import RETENTION_S
from shipyard.primitives.spec.alerting import HistoryRetention
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")

# After each 10-second boundary, so the router has closed the bucket's last second.
TICK_OFFSET_S = 0.25
PRUNE_EVERY_S = 600


def supervisor_readings(supervisor: Supervisor) -> Callable[[str], list[InstanceReading]]:
    total = psutil.virtual_memory().total

    def readings(env: str) -> list[InstanceReading]:
        out = []
        for st in supervisor.all(env):
            alive = st.state not in ("crashed", "stopping", "stopped", "restarting")
            out.append(InstanceReading(st.id, st.release, alive and st.ready,
                               cpu=st.cpu_percent / 100.0 if alive else None,
                               rss=st.rss_bytes if alive and st.rss_bytes else None,
                               memory_limit=st.memory_limit or total,
                               health_failures=st.consecutive_health_failures, restarts=st.restarts))
        return out

    return readings


def point_row(p: Point) -> dict[str, Any]:
    return {k: v for k, v in asdict(p).items() if k != "step"}


def point_of(row: dict[str, Any], step: int) -> Point:
    return Point(step=step, **row)


class Recorder:
    def __init__(self, *, link: SlicesSource, store: Store, clock: Clock, specs: SpecWatch,
                 readings: Callable[[str], list[InstanceReading]],
                 on_reply: Callable[[str, dict[str, Any], int], None] | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.link = link
        self.store = store
        self.clock = clock
        self.specs = specs
        self.readings = readings
        self.on_reply = on_reply
        self.on_tick = on_tick
        self.cursor: dict[str, int] = {}  # env → first second not recorded yet
        self.minute_cursor: dict[str, int] = {}  # env → first minute not compacted yet
        self.restarts: dict[str, int] = {}  # instance → restart total at its last point
        self._pruned_at = 0.0
        self.ticks = 0

    def retention(self) -> HistoryRetention:
        spec = self.specs.current()
        return spec.metrics.retention if spec is not None else HistoryRetention()

    async def run_forever(self) -> None:
        clock = self.clock
        while True:
            now = clock.time()
            await clock.sleep(max(0.0, now - now % RAW_STEP + RAW_STEP + TICK_OFFSET_S - now))
            try:
                await self.tick()
            except ShipyardError as err:
                log.warning("history recorder: %s", err)
            except Exception:  # a bug here must not end the recording silently
                log.exception("history recorder crashed a tick")

    async def tick(self) -> None:
        envs = [e.name for e in await asyncio.to_thread(self.store.list_environments)]
        for env in envs:
            try:
                await self.record(env)
            except ShipyardError as err:  # router down or the env not in it (yet): nothing to record now
                log.debug("history recorder %s: %s", env, err)
        await asyncio.to_thread(self._compact_and_prune, envs)
        self.ticks += 1
        if self.on_tick is not None:
            self.on_tick()

    async def record(self, env: str) -> list[Point]:
        if env not in self.cursor:
            newest = await asyncio.to_thread(self.store.newest_point_t, "raw", env)
            self.cursor[env] = newest + RAW_STEP if newest is not None else 0
        since = max(self.cursor[env], int(self.clock.time()) - RETENTION_S)
        reply = await self.link.call("slices", env=env, since=since)
        end = int(reply["now_sec"])
        end -= end % RAW_STEP
        since = int(reply["since"])
        since += -since % RAW_STEP  # a bucket the router no longer holds whole is not recorded
        if end <= since:
            return []
        if self.on_reply is not None:
            self.on_reply(env, reply, end)
        samples = [s for s in samples_from_slices(reply, {}) if since <= s.t < end]
        readings = self.readings(env)
        points = raw_points(env, samples, readings, self.restarts, newest=end - RAW_STEP)
        await asyncio.to_thread(self.store.write_points, "raw", [point_row(p) for p in points])
        self.cursor[env] = end
        self.restarts.update({r.instance: r.restarts for r in readings})
        return points

    def _compact_and_prune(self, envs: Sequence[str]) -> None:
        for env in envs:
            self.compact(env)
        now = self.clock.time()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            keep = self.retention()
            self.store.prune_points("raw", now - keep.raw)
            self.store.prune_points("minute", now - keep.minute)

    def compact(self, env: str) -> int:
        """Minute points for every complete minute not compacted yet; returns how many minutes."""
        recorded = self.cursor.get(env)
        if recorded is None:
            return 0
        if env not in self.minute_cursor:
            newest = self.store.newest_point_t("minute", env)
            self.minute_cursor[env] = newest + MINUTE_STEP if newest is not None else 0
        start = self.minute_cursor[env]
        end = recorded - recorded % MINUTE_STEP
        if end <= start:
            return 0
        rows = self.store.read_points("raw", env, start, end)
        minutes = downsample((point_of(r, RAW_STEP) for r in rows), MINUTE_STEP)
        self.store.write_points("minute", [point_row(p) for p in minutes])
        self.minute_cursor[env] = end
        return len({p.t for p in minutes})
