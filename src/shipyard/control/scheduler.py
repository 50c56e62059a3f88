"""Cron scheduler for the control plane (backups, drills).

Cron expressions are evaluated in the scheduler's time zone (the machine's local zone unless given).
Every outcome is reported through ``on_event``: a run that finished (``ok``), raised (``failed``), or did
not happen (``missed``: the control plane was down or asleep through an occurrence, or the previous run of
the same job was still going). After a gap only the newest occurrence runs (like anacron): one catch-up run,
the skipped ones reported as one ``missed`` event with their count.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from croniter import croniter

from shipyard.errors import ConfigError
from shipyard.primitives.clock import Clock

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ScheduleEvent:
    job: str
    kind: Literal["ok", "failed", "missed"]
    due: float  # the occurrence (wall time) this is about; for "missed", the newest one skipped
    at: float  # when it was recorded
    error: str | None = None
    count: int = 1  # occurrences this event stands for
    duration_s: float | None = None


OnEvent = Callable[[ScheduleEvent], object]


@dataclass
class _Entry:
    name: str
    cron: str
    job: Job
    due: float
    tz: dt.tzinfo
    task: asyncio.Task[None] | None = None
    last: ScheduleEvent | None = field(default=None)


@dataclass(frozen=True)
class JobState:
    name: str
    cron: str
    next_due: float
    running: bool
    last: ScheduleEvent | None


class Scheduler:
    def __init__(self, clock: Clock, on_event: OnEvent | None = None, *, tz: dt.tzinfo | None = None) -> None:
        self.clock = clock
        self.on_event = on_event
        self.tz: dt.tzinfo = tz or dt.datetime.now().astimezone().tzinfo or dt.UTC
        self._jobs: dict[str, _Entry] = {}
        self._changed = asyncio.Event()

    def _next_after(self, cron: str, t: float, tz: dt.tzinfo | None = None) -> float:
        return float(croniter(cron, dt.datetime.fromtimestamp(t, tz or self.tz)).get_next(float))

    def add(self, name: str, cron: str, job: Job, *, last_run: float | None = None,
            tz: dt.tzinfo | None = None) -> None:
        """Schedules ``job`` (an async callable) on ``cron``. With ``last_run`` (from the state store),
        occurrences since then that never ran are reported missed and caught up once on start."""
        text = " ".join(cron.split())
        if not croniter.is_valid(text):
            raise ConfigError(f"schedule for {name!r}: not a valid cron expression: {cron!r}")
        start = last_run if last_run is not None else self.clock.time()
        zone = tz or self.tz
        self._jobs[name] = _Entry(name, text, job, self._next_after(text, start, zone), zone)
        self._changed.set()

    def remove(self, name: str) -> None:
        entry = self._jobs.pop(name, None)
        if entry and entry.task:
            entry.task.cancel()
        self._changed.set()

    def next_due(self) -> tuple[str, float] | None:
        """The job that runs next and when (wall time)."""
        if not self._jobs:
            return None
        entry = min(self._jobs.values(), key=lambda e: (e.due, e.name))
        return entry.name, entry.due

    def jobs(self) -> list[JobState]:
        return [JobState(e.name, e.cron, e.due, e.task is not None and not e.task.done(), e.last)
                for e in sorted(self._jobs.values(), key=lambda e: e.name)]

    async def _emit(self, entry: _Entry, event: ScheduleEvent) -> None:
        entry.last = event
        if self.on_event is None:
            return
        try:
            result = self.on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken recorder must not stop the schedule
            log.exception("scheduler: recording %s event of %s failed", event.kind, event.job)

    async def _run(self, entry: _Entry, due: float) -> None:
        t0 = self.clock.monotonic()
        try:
            await entry.job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._emit(entry, ScheduleEvent(entry.name, "failed", due, self.clock.time(), str(exc) or
                                                  type(exc).__name__, duration_s=self.clock.monotonic() - t0))
            return
        await self._emit(entry, ScheduleEvent(entry.name, "ok", due, self.clock.time(),
                                              duration_s=self.clock.monotonic() - t0))

    async def run_pending(self) -> list[str]:
        """Starts every job that is due now; returns their names. Runs go on in background tasks."""
        now = self.clock.time()
        started: list[str] = []
        for entry in list(self._jobs.values()):
            if entry.due > now:
                continue
            occurrences = [entry.due]
            while (nxt := self._next_after(entry.cron, occurrences[-1], entry.tz)) <= now and len(occurrences) < 10_000:
                occurrences.append(nxt)
            entry.due = self._next_after(entry.cron, now, entry.tz)
            newest = occurrences[-1]
            if len(occurrences) > 1:
                await self._emit(entry, ScheduleEvent(entry.name, "missed", occurrences[-2], now,
                                                      "the control plane was not running at that time",
                                                      count=len(occurrences) - 1))
            if entry.task is not None and not entry.task.done():
                await self._emit(entry, ScheduleEvent(entry.name, "missed", newest, now,
                                                      "the previous run was still going"))
                continue
            entry.task = asyncio.create_task(self._run(entry, newest), name=f"schedule:{entry.name}")
            started.append(entry.name)
        return started

    async def run_forever(self) -> None:
        try:
            while True:
                await self.run_pending()
                self._changed.clear()
                nxt = self.next_due()
                delay = max(0.0, nxt[1] - self.clock.time()) if nxt else 3600.0
                sleeper = asyncio.ensure_future(self.clock.sleep(delay))
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    changed.cancel()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Cancels running jobs and waits for them to end."""
        tasks = [e.task for e in self._jobs.values() if e.task is not None and not e.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
