"""The supervisor with real instances: start, crash restarts, health restarts, stop, adopt, logs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from ctlkit import PYTHON, WEB_APP, Recorder, Runner

from shipyard.control import logfiles
from shipyard.control.health import http_probe
from shipyard.control.supervisor import InstanceSpec, Supervisor, backoff_delay, instance_environment
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.probe import Probe

# A long start period: a slow start on a busy machine must not count; a first pass ends it early.
FAST_LIVE = Probe(path="/health", interval=0.2, timeout=1.0, retries=2, start_period=30.0)
FAST_READY = Probe(path="/ready", interval=0.2, timeout=1.0, retries=2)


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A release dir holding the app the way a user's repo would (run = "python3 app.py")."""
    rel = tmp_path / "releases" / "r1"
    rel.mkdir(parents=True)
    shutil.copy(WEB_APP, rel / "app.py")
    (tmp_path / "ctl").mkdir()
    return rel


def make_spec(release: Path, iid: str = "staging-r1-0", *, port: int | None = None, ready: Probe | None = None,
              live: Probe = FAST_LIVE, grace: float = 10.0, **env: str) -> InstanceSpec:
    ctl = release.parent.parent / "ctl"
    return InstanceSpec(
        id=iid, env="staging", release=release.name, index=0, cmd=f"{PYTHON} app.py", cwd=release,
        env_vars={"CONTROL_DIR": str(ctl), "GREETING": "hello", **env}, port=port or free_port(),
        log_path=release.parent.parent / "logs" / "staging" / f"{iid}.log", health=live, ready=ready,
        stop_grace=grace)


def pid_of(sup: Supervisor, iid: str) -> tuple[int, float]:
    st = sup.status(iid)
    assert st is not None and st.pid is not None and st.create_time is not None
    return st.pid, st.create_time


def supervisor(rec: Recorder, **kw: float) -> Supervisor:
    return Supervisor(clock=SystemClock(), on_change=rec.on_change, on_event=rec.on_event, **kw)  # type: ignore[arg-type]


def test_start_becomes_ready_with_environment_and_stops(release: Path, recorder: Recorder, run: Runner) -> None:
    info = release.parent.parent / "info.json"
    spec = make_spec(release, ready=FAST_READY, INFO_FILE=str(info))

    async def scenario() -> None:
        sup = supervisor(recorder)
        st = await sup.start(spec)
        assert st.state == "starting" and not st.ready and st.pid and st.port == spec.port
        assert await sup.wait_ready([spec.id], timeout=30)
        ready = sup.status(spec.id)
        assert ready is not None and ready.state == "ready" and ready.ready and ready.restarts == 0
        pid, ct = pid_of(sup, spec.id)
        assert [s.id for s in sup.all("staging")] == [spec.id] and sup.all("prod") == []
        assert any(c.ready for c in recorder.changes)
        assert (await http_probe(spec.port, "/", 1.0)).ok
        await sup.stop(spec.id)
        assert sup.status(spec.id) is None
        assert not process.is_alive(pid, ct)
        assert recorder.changes[-1].state == "stopped"
        assert not await sup.wait_ready([spec.id], timeout=1)
        await sup.close()

    os.environ["SHIPYARD_MASTER_KEY"] = "must-not-leak"
    try:
        run(scenario())
    finally:
        del os.environ["SHIPYARD_MASTER_KEY"]
    seen = json.loads(info.read_text())
    assert seen["cwd"] == str(release)
    env = seen["env"]
    assert env["PORT"] == str(spec.port)
    assert (env["SHIPYARD_ENV"], env["SHIPYARD_RELEASE"], env["SHIPYARD_INSTANCE"]) == ("staging", "r1", spec.id)
    assert env["GREETING"] == "hello"
    assert "SHIPYARD_MASTER_KEY" not in env
    assert recorder.kinds() == ["instance.started", "instance.stopped"]
    assert "stopped by SIGTERM" in recorder.events[-1][2]
    assert "listening on" in spec.log_path.read_text()


def test_crash_is_restarted_with_backoff_and_recorded(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release)

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        first = sup.status(spec.id)
        assert first is not None
        await http_probe(spec.port, "/exit/3", 1.0)
        await recorder.until(lambda: recorder.event("instance.crashed"))
        crashed_at = time.monotonic()
        st = sup.status(spec.id)
        assert st is not None and st.state == "crashed" and not st.ready and st.last_exit == "exited with code 3"
        await recorder.until(lambda: (s := sup.status(spec.id)) and s.ready and s.restarts == 1)
        assert time.monotonic() - crashed_at >= 0.9  # waited the first backoff step
        second, _ = pid_of(sup, spec.id)
        assert second != first.pid
        os.kill(second, signal.SIGKILL)
        await recorder.until(lambda: recorder.event("instance.crashed", 1))
        await sup.close(stop_instances=True)

    run(scenario())
    _, kind, message, data = recorder.get("instance.crashed")
    assert data["exit_code"] == 3 and data["signal"] is None and data["backoff_s"] == 1.0
    assert "exited with code 3" in message
    _, _, message, data = recorder.get("instance.crashed", 1)
    assert data["signal"] == "SIGKILL" and data["backoff_s"] == 2.0
    assert recorder.event("instance.restarted") is not None


def test_failing_liveness_takes_it_out_and_restarts_it(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release)
    unhealthy = release.parent.parent / "ctl" / "unhealthy"

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        first_pid, first_ct = pid_of(sup, spec.id)
        unhealthy.touch()
        await recorder.until(lambda: recorder.event("instance.unhealthy"))
        unhealthy.unlink()
        # Out of rotation before the restart: an on_change said not ready while it was still failing.
        assert any(c.state == "unready" and not c.ready for c in recorder.changes)
        assert any(c.consecutive_health_failures == 1 for c in recorder.changes)
        assert not process.is_alive(first_pid, first_ct)
        await recorder.until(lambda: (s := sup.status(spec.id)) and s.ready and s.restarts == 1)
        st = sup.status(spec.id)
        assert st is not None and st.pid != first_pid and st.consecutive_health_failures == 0
        await sup.close(stop_instances=True)

    run(scenario())
    _, _, message, data = recorder.get("instance.unhealthy")
    assert "failed 2 health checks in a row (500)" in message
    assert data["probe_error"] == "500"


def test_failing_readiness_takes_it_out_without_restart(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release, ready=FAST_READY)
    unready = release.parent.parent / "ctl" / "unready"

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        pid, _ = pid_of(sup, spec.id)
        unready.touch()
        await recorder.until(lambda: (s := sup.status(spec.id)) and s.state == "unready")
        unready.unlink()
        assert await sup.wait_ready([spec.id], timeout=30)
        st = sup.status(spec.id)
        assert st is not None and st.pid == pid and st.restarts == 0, recorder.events
        await sup.close(stop_instances=True)

    run(scenario())
    assert "instance.unready" in recorder.kinds() and "instance.recovered" in recorder.kinds()
    assert "instance.unhealthy" not in recorder.kinds()


def test_stop_escalates_to_sigkill_after_grace(release: Path, recorder: Recorder, run: Runner) -> None:
    child_file = release.parent.parent / "child.pid"
    spec = make_spec(release, grace=30.0, IGNORE_TERM="1", SPAWN_CHILD="1", CHILD_PID_FILE=str(child_file))

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        pid, ct0 = pid_of(sup, spec.id)
        child = psutil.Process(int(child_file.read_text()))
        ct = child.create_time()
        await sup.stop(spec.id, grace=0.5)  # overrides the spec's 30 s
        assert not process.is_alive(pid, ct0)
        assert not process.is_alive(child.pid, ct)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: no zombie
        await sup.close()

    run(scenario())
    assert "SIGKILL after 0.5s grace" in recorder.get("instance.stopped")[2]


def test_a_new_supervisor_adopts_running_instances(release: Path, run: Runner) -> None:
    specs = [make_spec(release, f"staging-r1-{i}") for i in range(2)]
    old = Recorder()

    async def first_life() -> list[tuple[int, float]]:
        sup = supervisor(old)
        for s in specs:
            await sup.start(s)
        assert await sup.wait_ready([s.id for s in specs], timeout=30)
        handles = [pid_of(sup, s.id) for s in specs]
        await sup.close()  # the control plane goes away; instances keep running
        return handles

    handles = run(first_life())
    assert all(process.is_alive(pid, ct) for pid, ct in handles)
    new = Recorder()

    async def second_life() -> None:
        sup = supervisor(new)
        (pid0, ct0), (pid1, ct1) = handles
        assert sup.adopt(specs[0], pid0, ct0)
        assert not sup.adopt(specs[1], pid1, ct1 + 100)  # not the process it claims to be
        st = sup.status(specs[0].id)
        assert st is not None and st.adopted and not st.ready and st.pid == pid0
        assert sup.status(specs[1].id) is None
        assert await sup.wait_ready([specs[0].id], timeout=30)
        # Still watched: a crash after adoption is noticed and restarted.
        os.kill(pid0, signal.SIGKILL)
        await new.until(lambda: (s := sup.status(specs[0].id)) and s.ready and s.restarts == 1)
        await sup.close(stop_instances=True)

    run(second_life())
    assert new.kinds()[:2] == ["instance.adopted", "instance.crashed"]


def test_crash_loop_fails_wait_ready_fast(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release, EXIT_AT_START="3")

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert not await sup.wait_ready([spec.id], timeout=60, max_restarts=1)
        st = sup.status(spec.id)
        assert st is not None and st.last_exit == "exited with code 3" and not st.ready
        await sup.close(stop_instances=True)

    run(scenario())


def test_wait_ready_times_out(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release, ready=FAST_READY, READY_AFTER="600")

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert not await sup.wait_ready([spec.id], timeout=0.5)
        await sup.close(stop_instances=True)

    run(scenario())


def test_start_errors(release: Path, recorder: Recorder, run: Runner) -> None:
    async def scenario() -> None:
        sup = supervisor(recorder)
        spec = make_spec(release)
        await sup.start(spec)
        with pytest.raises(ShipyardError, match="already running"):
            await sup.start(spec)
        bad = make_spec(release.parent / "missing", "staging-r9-0")
        with pytest.raises(BadInput, match="not found"):
            await sup.start(bad)
        assert sup.status(bad.id) is None
        with pytest.raises(BadInput, match="unknown signal"):
            await sup.start(InstanceSpec(**{**bad.__dict__, "cwd": release, "stop_signal": "SIGWHAT"}))
        await sup.close(stop_instances=True)

    run(scenario())


def test_samples_cpu_and_rss_and_rotates_logs(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release, LOG_LINES_PER_REQUEST="400")

    async def scenario() -> None:
        sup = supervisor(recorder, sample_interval=0.1, log_max_bytes=20_000, log_keep=2)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        for _ in range(3):
            await http_probe(spec.port, "/spam", 5.0)
            rotated = logfiles.rotated(spec.log_path, 1)
            deadline = time.monotonic() + 30
            # Rotation happens on the housekeeping tick; there is no event to await.
            while not (rotated.exists() and spec.log_path.stat().st_size < 20_000):
                assert time.monotonic() < deadline, "log never rotated"
                await asyncio.sleep(0.05)
            rotated.unlink()
        st = sup.status(spec.id)
        assert st is not None and st.rss_bytes > 1_000_000
        await http_probe(spec.port, "/after-rotation", 5.0)
        await sup.close(stop_instances=True)

    run(scenario())
    # Still written to after copytruncate (O_APPEND: no hole, no stale offset).
    text = spec.log_path.read_text()
    assert "\0" not in text
    assert "/after-rotation" in text


def test_backoff_steps() -> None:
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(500) == 30


def test_instance_environment_layers() -> None:
    spec = make_spec(Path("/tmp/releases/r7"), port=9001, PORT="1", PATH="/custom")
    env = instance_environment(spec, base={"PATH": "/usr/bin", "HOME": "/root", "SHIPYARD_MASTER_KEY": "x",
                                           "SHIPYARD_DATABASE_URL": "postgresql://u:pw@h/db"})
    assert env["PORT"] == "9001"  # shipyard's own settings win
    assert env["PATH"] == "/custom" and env["HOME"] == "/root"
    assert not any(k in env for k in ("SHIPYARD_MASTER_KEY", "SHIPYARD_DATABASE_URL"))
    assert env["SHIPYARD_RELEASE"] == "r7"


def test_stop_during_backoff_and_twice_at_once(release: Path, recorder: Recorder, run: Runner) -> None:
    spec = make_spec(release, EXIT_AT_START="4")

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        await recorder.until(lambda: recorder.event("instance.crashed"))
        started = time.monotonic()
        await asyncio.gather(sup.stop(spec.id), sup.stop(spec.id))
        assert time.monotonic() - started < 5  # did not sit out the backoff
        assert sup.status(spec.id) is None and sup.all() == []
        await sup.close()

    run(scenario())
    assert recorder.kinds().count("instance.stopped") == 1
    assert "not running" in recorder.get("instance.stopped")[2]


def test_a_crash_of_the_leader_takes_its_group_down_before_the_restart(release: Path, recorder: Recorder,
                                                                     run: Runner) -> None:
    # A compound command keeps the shell as the leader; if it dies the app behind it must not keep
    # the port (the restart would fail to bind) — like gunicorn workers of a killed master.
    spec = InstanceSpec(**{**make_spec(release).__dict__, "cmd": f"true && {PYTHON} app.py"})

    async def scenario() -> None:
        sup = supervisor(recorder)
        await sup.start(spec)
        assert await sup.wait_ready([spec.id], timeout=30)
        leader, _ = pid_of(sup, spec.id)
        (app,) = [p for p in process.group_members(leader) if p != leader]
        app_ct = psutil.Process(app).create_time()
        os.kill(leader, signal.SIGKILL)
        await recorder.until(lambda: (s := sup.status(spec.id)) and s.ready and s.restarts == 1)
        assert not process.is_alive(app, app_ct)
        await sup.close(stop_instances=True)

    run(scenario())
    assert recorder.get("instance.crashed")[3]["killed_leftovers"] != []
