"""The probe state machine (pure, driven by times) and the HTTP probe / checker I/O."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ctlkit import PYTHON, WEB_APP, Runner

from shipyard.control import health
from shipyard.control.health import HealthChecker, ProbeResult
from shipyard.primitives import process
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.probe import Probe

LIVE = Probe(path="/health", interval=1.0, timeout=1.0, retries=3, start_period=10.0)
READY = Probe(path="/ready", interval=2.0, timeout=1.0, retries=2)


def feed(state: health.HealthState, results: list[tuple[float, health.Kind, bool]], live: Probe = LIVE,
         ready: Probe | None = None) -> tuple[health.HealthState, list[tuple[float, str]]]:
    """Apply ``[(time, kind, ok), ...]``; return the final state and every action with its time."""
    actions: list[tuple[float, str]] = []
    for now, kind, ok in results:
        state, acts = health.record(state, live, ready, kind, ok, now, None if ok else "500")
        actions += [(now, a) for a in acts]
    return state, actions


# -- the pure state machine --------------------------------------------------------------------------
def test_failures_inside_start_period_do_not_count() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(t, "live", False) for t in (1, 2, 3, 4, 5, 6, 7, 8, 9)])
    assert actions == [] and s.live_failures == 0 and not s.failed
    s, actions = feed(s, [(10, "live", False), (11, "live", False), (12, "live", False)])
    assert actions == [(12, "restart")]
    assert s.failed and s.live_failures == 3


def test_a_pass_ends_the_start_period_early() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(1, "live", True), (2, "live", False), (3, "live", False), (4, "live", False)])
    # No readiness probe configured: the liveness pass made it ready; the failures take it out and restart.
    assert actions == [(1, "ready"), (4, "unready"), (4, "restart")]


def test_a_pass_resets_the_failure_count() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(11, "live", False), (12, "live", False), (13, "live", True),
                          (14, "live", False), (15, "live", False)])
    assert actions == [(13, "ready")]
    assert s.live_failures == 2 and not s.failed


def test_without_ready_probe_health_path_polls_make_it_ready_and_failures_do_not_count() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(0, "ready", False), (30, "ready", False), (31, "ready", False), (32, "ready", False)])
    assert actions == [] and s.live_failures == 0  # startup polls are not liveness checks
    s, actions = feed(s, [(33, "ready", True)])
    assert actions == [(33, "ready")] and s.ready and s.live_passed


def test_with_ready_probe_liveness_alone_does_not_make_it_ready() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(1, "live", True), (2, "live", True)], ready=READY)
    assert actions == [] and not s.ready
    s, actions = feed(s, [(3, "ready", True)], ready=READY)
    assert actions == [(3, "ready")]


def test_readiness_failures_take_it_out_without_restart_and_a_pass_brings_it_back() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, actions = feed(s, [(1, "ready", True), (3, "ready", False), (5, "ready", False), (7, "ready", True)],
                      ready=READY)
    assert actions == [(1, "ready"), (5, "unready"), (7, "ready")]
    assert not s.failed


def test_schedule_polls_readiness_fast_until_ready_then_at_interval() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    assert health.due(s, READY, 0.0) == ["ready"]  # readiness at once, liveness after one interval
    gaps = []
    now = 0.0
    for _ in range(20):
        s = health.begin(s, LIVE, READY, ["ready"], now)
        gaps.append(round(s.next_ready - now, 4))
        now = s.next_ready
    assert gaps[0] == health.STARTUP_POLL_FIRST
    assert gaps == sorted(gaps) and gaps[-1] == health.STARTUP_POLL_MAX
    assert "live" in health.due(s, READY, max(now, LIVE.interval))
    s, _ = health.record(s, LIVE, READY, "ready", True, now)
    s = health.begin(s, LIVE, READY, ["ready"], now)
    assert s.next_ready == now + READY.interval


def test_without_ready_probe_a_ready_instance_is_watched_by_liveness_only() -> None:
    s = health.initial(LIVE, started=0.0, now=0.0)
    s, _ = health.record(s, LIVE, None, "ready", True, 0.5)
    assert health.due(s, None, 100.0) == ["live"]
    assert health.next_wakeup(s, None) == s.next_live


def test_adopted_process_past_its_start_period_counts_failures_at_once() -> None:
    s = health.initial(LIVE, started=-100.0, now=0.0)
    assert health.due(s, None, 0.0) == ["live", "ready"]
    s, actions = feed(s, [(0, "live", False), (1, "live", False), (2, "live", False)])
    assert actions == [(2, "restart")]


def test_nothing_is_due_after_a_restart_decision() -> None:
    s = health.initial(LIVE, started=-100.0, now=0.0)
    s, _ = feed(s, [(0, "live", False), (1, "live", False), (2, "live", False)])
    assert health.due(s, READY, 1000.0) == []
    assert health.record(s, LIVE, None, "live", True, 1001.0) == (s, [])


# -- the checker driven by a clock and a scripted prober ---------------------------------------------
def test_checker_runs_on_the_clock_without_sleeping() -> None:
    clock = ManualClock()
    live = Probe(path="/health", interval=1.0, retries=3, start_period=5.0)
    calls: list[tuple[float, str]] = []
    updates: list[tuple[float, list[str], int]] = []

    async def prober(port: int, path: str, timeout: float) -> ProbeResult:
        now = clock.monotonic()
        calls.append((now, path))
        # Healthy from t=2 until t=20, then failing.
        return ProbeResult(2.0 <= now < 20.0, "200" if 2.0 <= now < 20.0 else "refused")

    checker = HealthChecker(port=1, live=live, ready=None, clock=clock, started=clock.monotonic(),
                            on_update=lambda st, acts: updates.append((clock.monotonic(), list(acts),
                                                                       st.live_failures)),
                            prober=prober)
    asyncio.run(asyncio.wait_for(checker.run(), 10))
    ready_at = [t for t, acts, _ in updates if "ready" in acts]
    restart_at = [t for t, acts, _ in updates if "restart" in acts]
    assert len(ready_at) == 1 and 2.0 <= ready_at[0] < 2.6
    assert len(restart_at) == 1 and 22.0 <= restart_at[0] <= 23.0
    assert checker.state.failed
    # Once ready there is no extra readiness polling: one probe per interval.
    assert sum(1 for t, _ in calls if 3 <= t < 19) <= 17


# -- the HTTP probe against real servers --------------------------------------------------------------
def test_http_probe_against_the_app(tmp_path: Path, run: Runner, port: int) -> None:
    control = tmp_path / "ctl"
    control.mkdir()
    h = process.spawn(f"exec {PYTHON} {WEB_APP}", cwd=tmp_path, log_path=tmp_path / "app.log",
                      env={"PATH": os.environ["PATH"], "PORT": str(port), "CONTROL_DIR": str(control)})

    async def scenario() -> list[ProbeResult]:
        while not (await health.http_probe(port, "/health", 1.0)).ok:
            await asyncio.sleep(0.05)  # the app is starting; nothing to await but its socket
        out = [await health.http_probe(port, "/health", 1.0), await health.http_probe(port, "/redirect", 1.0)]
        (control / "unhealthy").touch()
        out.append(await health.http_probe(port, "/health", 1.0))
        return out

    ok, redirect, failing = run(scenario(), timeout=30)
    assert ok == ProbeResult(True, "200")
    assert redirect == ProbeResult(True, "302")
    assert failing == ProbeResult(False, "500")
    run(process.stop_process_group(h.pid, h.create_time, grace=10))
    refused = run(health.http_probe(port, "/health", 1.0))
    assert not refused.ok and refused.detail == "connection refused"


def test_http_probe_times_out_and_rejects_garbage(run: Runner) -> None:
    async def scenario() -> tuple[ProbeResult, ProbeResult]:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1000)
            await asyncio.sleep(5)
            writer.close()

        async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1000)
            writer.write(b"SSH-2.0-OpenSSH\r\n")
            await writer.drain()
            writer.close()

        s1 = await asyncio.start_server(silent, "127.0.0.1", 0)
        s2 = await asyncio.start_server(garbage, "127.0.0.1", 0)
        async with s1, s2:
            p1 = s1.sockets[0].getsockname()[1]
            p2 = s2.sockets[0].getsockname()[1]
            return await health.http_probe(p1, "/", 0.2), await health.http_probe(p2, "/", 1.0)

    timed_out, bad = run(scenario(), timeout=30)
    assert timed_out == ProbeResult(False, "timed out after 0.2s")
    assert not bad.ok and "not an HTTP response" in bad.detail
