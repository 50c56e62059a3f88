"""The collector: one environment's live measurements, as analysis ``Sample``s, once a second; and
``LiveTraffic``, every environment's per-second traffic totals for the alert evaluator's rate windows.

It pulls the router's finished per-second slices (``slices`` op) and reads the supervisor's view of
each instance (CPU, memory, consecutive health failures, restarts), and keeps the last 15 minutes.
The rules of ``engine.analysis.measurements`` hold: every second the collector has seen gets a sample
for every instance in the routing table, even with zero requests; a second it could not pull (router
down) is simply missing, which conditions treat as "no data".

Error counts follow the issue's definition: 5xx answers, requests that got no answer, and failed
attempts on an instance that the router retried elsewhere (``retried`` — these also count as attempts,
so a crash-looping canary shows up as errors even when no client saw one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import psutil

from shipyard.control.routerlink import RouterLink
from shipyard.control.supervisor import Supervisor
from shipyard.control.tasks import guarded
from shipyard.engine.alerting.history import Point
from shipyard.engine.alerting.values import LIVE_S
from shipyard.engine.analysis.measurements import Sample
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.metrics import RETENTION_S, merge_counts

log = logging.getLogger("shipyard.control")

# Pull this long after each second ends, so the router has closed the second's slice.
PULL_OFFSET_S = 0.05
_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
# Live totals not pulled for this long are not read (no value: rules not true), as the history's gauges.
LIVE_STALE_S = 30


def samples_from_slices(reply: dict[str, Any], readings: dict[str, dict[str, Any]]) -> list[Sample]:
    """Instance samples for every second ``[since, now_sec)`` of a ``slices`` reply.

    ``readings``: instance id → supervisor reading (cpu cores, rss, memory_limit, health_failures,
    restarts), attached to the newest second only (it is a reading taken now, not a per-second series).
    """
    since, end = int(reply["since"]), int(reply["now_sec"])
    out: list[Sample] = []
    for inst in reply.get("instances", []):
        by_sec = {int(s["sec"]): s for s in inst.get("slices", [])}
        reading = readings.get(inst["id"], {})
        if inst.get("retired") and not by_sec:
            continue
        for t in range(since, end):
            sl = by_sec.get(t)
            extra = reading if t == end - 1 else {}
            if sl is None:
                out.append(Sample(t, inst["release"], inst["id"], **extra))
                continue
            status = [int(n) for n in sl["status"]]
            retried = int(sl.get("retried", 0))
            out.append(Sample(
                t, inst["release"], inst["id"],
                requests=sum(status) + retried,
                errors=status[5] + status[0] + retried,
                status={k: n for k, n in zip(_CLASSES, status, strict=True) if n},
                latency={int(i): int(n) for i, n in sl.get("histogram", [])},
                **extra,
            ))
    return out


class Collector:
    """The local target's ``MetricSource``."""

    def __init__(self, link: RouterLink, supervisor: Supervisor, clock: Clock, env: str) -> None:
        self.link = link
        self.supervisor = supervisor
        self.clock = clock
        self.env = env
        self.samples: deque[Sample] = deque()
        self.end: int | None = None  # first second not collected yet
        self.baseline: dict[str, int] = {}  # instance → restarts when first seen
        self.users = 0
        self._tick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._memory_total = psutil.virtual_memory().total

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = guarded(self._run(), f"collector-{self.env}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        clock = self.clock
        while True:
            now = clock.time()
            await clock.sleep(max(0.0, int(now) + 1 + PULL_OFFSET_S - now))
            try:
                await self.pull()
            except ShipyardError as err:
                log.warning("collector %s: %s", self.env, err)
            except Exception:  # a bug here must not end the collection silently
                log.exception("collector %s crashed a pull", self.env)

    # -- pulling -----------------------------------------------------------------------------------
    def readings(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for st in self.supervisor.all(self.env):
            base = self.baseline.setdefault(st.id, st.restarts)
            alive = st.state not in ("crashed", "stopping", "stopped", "restarting")
            out[st.id] = {
                "cpu": st.cpu_percent / 100.0 if alive else None,
                "rss": st.rss_bytes if alive and st.rss_bytes else None,
                "memory_limit": st.memory_limit or self._memory_total,
                "health_failures": st.consecutive_health_failures,
                "restarts": st.restarts - base,
            }
        return out

    async def pull(self) -> int:
        """One pull; returns the new end (exclusive) of the collected seconds."""
        reply = await self.link.call("slices", env=self.env, since=self.end)
        new = samples_from_slices(reply, self.readings())
        self.samples.extend(new)
        self.end = int(reply["now_sec"])
        horizon = self.end - RETENTION_S
        while self.samples and self.samples[0].t < horizon:
            self.samples.popleft()
        self._tick.set()
        self._tick = asyncio.Event()
        return self.end

    async def next_tick(self, timeout: float = 3.0) -> bool:
        """Wait for the next pull; False on timeout (the router did not answer)."""
        try:
            await asyncio.wait_for(self._tick.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def since(self, t: int) -> Iterator[Sample]:
        return (s for s in self.samples if s.t >= t)


class SlicesSource(Protocol):
    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]: ...


def second_totals(reply: dict[str, Any]) -> list[Point]:
    """Per finished second of a ``slices`` reply: every instance and release together (step 1), with the
    merged latency histogram; a second with no request is a zero point (it was served, just idle)."""
    by_sec: dict[int, tuple[int, int, list[Mapping[int, int]]]] = {}
    for t in range(int(reply["since"]), int(reply["now_sec"])):
        by_sec[t] = (0, 0, [])
    for s in samples_from_slices(reply, {}):
        req, err, hists = by_sec[s.t]
        if s.latency:
            hists.append(s.latency)
        by_sec[s.t] = (req + s.requests, err + s.errors, hists)
    return [Point("", "*", t, 1, req, err, hist=merge_counts(hists)) for t, (req, err, hists) in by_sec.items()]


class LiveTraffic:
    """Every environment's traffic per second over the last ``LIVE_S`` seconds: what the alert evaluator's
    rate windows read, pulled from the router's slices each second (the history's points are 10 s apart,
    which would hold a fault back up to 10 s more). Only totals are kept, a few KB per environment."""

    def __init__(self, link: SlicesSource, clock: Clock, timeout: float = 2.0) -> None:
        self.link = link
        self.clock = clock
        self.timeout = timeout  # a stuck router must not hold up the evaluation of the other rules
        self.seconds: dict[str, deque[Point]] = {}
        self.end: dict[str, int] = {}  # env → first second not pulled yet
        self._failing: set[str] = set()

    async def pull(self, envs: Iterable[str]) -> None:
        for env in envs:
            since = self.end.get(env, int(self.clock.time()) - LIVE_S)
            try:
                reply = await self.link.call("slices", self.timeout, env=env, since=since)
            except ShipyardError as err:  # router down or the env not in it (yet): its windows go stale
                if env not in self._failing:
                    self._failing.add(env)
                    log.debug("live traffic %s: %s", env, err)
                continue
            self._failing.discard(env)
            buf = self.seconds.setdefault(env, deque())
            buf.extend(second_totals(reply))
            self.end[env] = int(reply["now_sec"])
            while buf and buf[0].t < self.end[env] - LIVE_S:
                buf.popleft()

    def window(self, env: str, now: float) -> list[Point]:
        """The env's per-second totals, oldest first; empty when it has not been pulled lately. (A pull that
        fails now and then loses nothing: the next one asks from the first second missing.)"""
        buf = self.seconds.get(env)
        if not buf or self.end.get(env, 0) < int(now) - LIVE_STALE_S:
            return []
        return list(buf)
