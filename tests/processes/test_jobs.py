"""Scheduled jobs with a test clock: real commands in a release directory, a real state database."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shipyard.control.events import EventLog
from shipyard.control.instances import InstanceFactory
from shipyard.control.jobs import JobPlace, JobService
from shipyard.control.paths import Paths
from shipyard.engine.rollout.launch import Launch
from shipyard.errors import ConfigError
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

SPEC = """[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"

[jobs.report]
schedule = "0 3 * * *"
command = "echo \\"greeting=$GREETING tz=$TZ_SEEN\\"; exit 3"
envs = ["prod"]

[jobs.slow]
schedule = "5 10 * * *"
command = "echo started; sleep 30; echo never"
timeout = "2m"
concurrency = "forbid"
stop = { signal = "SIGTERM", grace = "5s" }
envs = ["prod"]

[environments.prod]
port = 8400
env = { GREETING = "hello from prod" }
windows = { timezone = "Europe/Paris" }
"""


class SteppedClock:
    """A test clock whose sleeps end only when the test moves time past them."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._n = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._n), fut))
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    async def advance(self, seconds: float) -> None:
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)


def paris(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo("Europe/Paris")).timestamp()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Any, Callable[[SteppedClock], JobService]]:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "shipyard.toml")
    paths = Paths(tmp_path)
    paths.ensure()
    store = open_store(None, paths.state)
    release = tmp_path / "release"
    release.mkdir()
    factory = InstanceFactory(paths, SecretStore(paths.state))

    async def where(spec_: Any, env: str) -> JobPlace:
        from shipyard.control.deploys.commands import release_environment

        environ = release_environment(factory, env, Launch.from_spec(spec_, env), "r1", release)
        return JobPlace("r1", release, {**environ, "TZ_SEEN": "set"})

    def service(clock: SteppedClock) -> JobService:
        return JobService(store=store, events=EventLog(store, clock), clock=clock, where=where, logs=paths.state / "logs",
                          notify=lambda env, kind, summary, details: NOTIFIED.append((env, kind, summary)))

    NOTIFIED.clear()
    return spec, store, service


NOTIFIED: list[tuple[str, str, str]] = []  # what the jobs handed to the notifier (control/notify.py)


async def until(pred: Callable[[], Any], timeout: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (v := pred()):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)
    return v


def test_a_job_fires_at_its_time_in_the_env_zone_with_its_config_and_its_exit_code_is_kept(
        setup: Any, run: Callable[..., Any]) -> None:
    spec, store, service = setup

    async def scenario() -> None:
        clock = SteppedClock(paris(2026, 3, 10, 2, 59, 0))
        jobs = service(clock)
        sched = jobs.schedule(spec)
        assert await sched.run_pending() == []  # 02:59 in Paris: not yet
        await clock.advance(59)
        assert await sched.run_pending() == []
        await clock.advance(1)  # 03:00 Paris (02:00 UTC): its time
        assert await sched.run_pending() == ["report@prod"]
        await until(lambda: store.list_job_runs("prod", "report") and store.list_job_runs("prod", "report")[0].status != "running")
        [r] = store.list_job_runs("prod", "report")
        assert r.status == "failed" and r.exit_code == 3 and r.trigger == "schedule" and r.release == "r1"
        assert "greeting=hello from prod tz=set" in (r.output_tail or "")
        assert r.duration_s is not None and r.duration_s >= 0
        failed = [e for e in store.list_events("prod") if e.kind == "job.failed"]
        assert failed and (failed[0].data or {})["exit_code"] == 3
        # ...and the receivers hear of it (the lifecycle hook the daemon wires to the notifier).
        assert [(env, kind) for env, kind, _ in NOTIFIED] == [("prod", "job_failed")]
        assert "job report" in NOTIFIED[0][2]
        listing = jobs.listing(spec, "prod")
        report = next(j for j in listing if j["job"] == "report")
        assert report["timezone"] == "Europe/Paris" and report["runs"][0]["exit_code"] == 3
        assert report["next_run"] == paris(2026, 3, 11, 3, 0)
        await jobs.close()

    run(scenario(), timeout=30)


def test_forbid_skips_an_overlapping_run_and_a_run_past_its_timeout_is_stopped(
        setup: Any, run: Callable[..., Any]) -> None:
    spec, store, service = setup

    async def scenario() -> None:
        clock = SteppedClock(paris(2026, 3, 10, 10, 4, 59))
        jobs = service(clock)
        sched = jobs.schedule(spec)
        await clock.advance(1)
        assert "slow@prod" in await sched.run_pending()
        logs = jobs.logs / "prod" / "jobs"
        await until(lambda: any("started" in f.read_text() for f in logs.glob("slow-*.log")))
        await clock.advance(60)  # a manual run while it runs: forbid
        second = await jobs.start(spec, "prod", "slow")
        skipped = next(r for r in store.list_job_runs("prod", "slow") if r.id == second)
        assert skipped.status == "skipped" and "still going" in (skipped.reason or "")
        await clock.advance(60)  # 2 minutes in: its timeout → SIGTERM; `sleep` dies of it within the grace
        await jobs.wait("prod", "slow")
        runs = store.list_job_runs("prod", "slow")
        first = next(r for r in runs if r.id != second)
        assert first.status == "timed_out" and "timeout" in (first.reason or "")
        assert "never" not in (first.output_tail or "")
        assert len([r for r in runs if r.status != "skipped"]) == 1  # never two at once
        await jobs.close()

    run(scenario(), timeout=30)


def test_bad_job_settings_are_refused_with_their_key_path(tmp_path: Path) -> None:
    bad = SPEC.replace('schedule = "0 3 * * *"', 'schedule = "61 * * * *"').replace(
        'concurrency = "forbid"', 'concurrency = "sometimes"')
    (tmp_path / "shipyard.toml").write_text(bad)
    with pytest.raises(ConfigError) as err:
        load_spec(tmp_path / "shipyard.toml")
    problems = "\n".join(err.value.problems)
    assert "jobs.report.schedule" in problems and "jobs.slow.concurrency" in problems, problems
