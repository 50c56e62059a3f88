"""The cron scheduler: runs jobs on time (manual clock), records failures and missed runs."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from shipyard.control.scheduler import ScheduleEvent, Scheduler
from shipyard.errors import ConfigError
from shipyard.primitives.clock import ManualClock

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC).timestamp()


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp()


async def _noop() -> None:
    return None


def test_next_due_and_invalid_cron() -> None:
    s = Scheduler(ManualClock(START), tz=UTC)
    assert s.next_due() is None
    s.add("backup:staging", "0 3 * * *", _noop)
    s.add("drill:staging", "30 1 * * *", _noop)
    assert s.next_due() == ("drill:staging", at(1, 1, 30))
    s.remove("drill:staging")
    assert s.next_due() == ("backup:staging", at(1, 3))
    with pytest.raises(ConfigError, match="not a valid cron"):
        s.add("x", "61 * * * *", _noop)


def test_run_forever_runs_on_schedule_and_records_failures() -> None:
    asyncio.run(_run_forever_runs_on_schedule_and_records_failures())


async def _run_forever_runs_on_schedule_and_records_failures() -> None:
    clock = ManualClock(START)
    events: list[ScheduleEvent] = []
    three = asyncio.Event()
    runs: list[float] = []

    async def job() -> None:
        runs.append(clock.time())
        if len(runs) == 2:
            raise RuntimeError("pg_dump failed")
        if len(runs) == 3:
            three.set()

    s = Scheduler(clock, events.append, tz=UTC)
    s.add("backup", "0 3 * * *", job)
    task = asyncio.create_task(s.run_forever())
    try:
        await asyncio.wait_for(three.wait(), timeout=30)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runs[:3] == [at(1, 3), at(2, 3), at(3, 3)]
    assert [(e.kind, e.due) for e in events[:2]] == [("ok", at(1, 3)), ("failed", at(2, 3))]
    assert events[1].error == "pg_dump failed"


def test_missed_occurrences_are_recorded_and_caught_up_once() -> None:
    asyncio.run(_missed_occurrences_are_recorded_and_caught_up_once())


async def _missed_occurrences_are_recorded_and_caught_up_once() -> None:
    clock = ManualClock(at(5, 12))
    events: list[ScheduleEvent] = []
    runs: list[str] = []

    async def job() -> None:
        runs.append("ran")

    s = Scheduler(clock, events.append, tz=UTC)
    # Last ran on Jan 1 at 03:00; the control plane was down until Jan 5 noon: Jan 2, 3, 4 were missed,
    # Jan 5 03:00 is run late as the catch-up.
    s.add("backup", "0 3 * * *", job, last_run=at(1, 3))
    assert await s.run_pending() == ["backup"]
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == "schedule:backup"))
    assert runs == ["ran"]
    assert [(e.kind, e.due, e.count) for e in events] == [("missed", at(4, 3), 3), ("ok", at(5, 3), 1)]
    assert s.next_due() == ("backup", at(6, 3))


def test_run_still_going_at_next_occurrence_is_missed() -> None:
    asyncio.run(_run_still_going_at_next_occurrence_is_missed())


async def _run_still_going_at_next_occurrence_is_missed() -> None:
    clock = ManualClock(at(1, 2, 59))
    events: list[ScheduleEvent] = []
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    s = Scheduler(clock, events.append, tz=UTC)
    s.add("backup", "0 * * * *", slow)
    clock.advance(60)
    assert await s.run_pending() == ["backup"]
    clock.advance(3600)
    assert await s.run_pending() == []
    assert [(e.kind, e.error) for e in events] == [("missed", "the previous run was still going")]
    assert s.jobs()[0].running
    release.set()
    await s.aclose()
