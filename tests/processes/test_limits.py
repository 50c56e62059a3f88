"""Resource limits on one machine: real cgroups (v2, or the v1 memory/cpu controllers this machine mounts)
and, without them, the supervisor's own memory watch."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from shipyard.control.cgroups import Cgroups
from shipyard.control.supervisor import InstanceSpec, InstanceStatus, Supervisor
from shipyard.engine.rollout.launch import Limits
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.probe import Probe

HOG = Path(__file__).parent / "apps" / "hog.py"
LIVE = Probe(path="/health", interval=0.2, timeout=1.0, retries=3, start_period=30.0)
MIB = 1024 * 1024


class Events:
    def __init__(self) -> None:
        self.kinds: list[tuple[str, dict[str, Any]]] = []
        self.changes: list[InstanceStatus] = []

    def on_event(self, env: str, kind: str, message: str, data: dict[str, Any]) -> None:
        self.kinds.append((kind, {"message": message, **data}))

    def on_change(self, st: InstanceStatus) -> None:
        self.changes.append(st)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.kinds if k == kind]


def spec(tmp: Path, limits: Limits, iid: str = "dev-r1-0", **env: str) -> InstanceSpec:
    return InstanceSpec(id=iid, env="dev", release="r1", index=0, cmd=[sys.executable, str(HOG)], cwd=tmp,
                        env_vars=env, port=free_port(), log_path=tmp / "logs" / f"{iid}.log", health=LIVE,
                        stop_grace=5.0, limits=limits)


@pytest.fixture
def cgroups(tmp_path: Path) -> Cgroups:
    cg = Cgroups(tmp_path / "state")
    if cg.bases() == {} or ("memory" not in cg.bases() and "unified" not in cg.bases()):
        pytest.skip(f"no usable memory cgroup on this machine: {cg.warning}")
    return cg


async def until(pred: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return value


def test_past_its_memory_limit_an_instance_is_oom_killed_recorded_and_restarted(
        tmp_path: Path, cgroups: Cgroups, run: Callable[..., Any]) -> None:
    ev = Events()
    s = spec(tmp_path, Limits(memory=200 * MIB), HOG_MIB="400", HOG_ONCE=str(tmp_path / "hogged"))

    async def scenario() -> None:
        sup = Supervisor(clock=SystemClock(), on_change=ev.on_change, on_event=ev.on_event, cgroups=cgroups)
        await sup.start(s)
        first = sup.status(s.id)
        assert first is not None and first.memory_limit == 200 * MIB and first.limits_enforced == f"cgroup {cgroups.mode}"
        group = cgroups.group(s.id)
        assert group is not None and first.pid is not None
        assert all(str(first.pid) in f.read_text().split() for f in group.join_files())  # joined before exec
        await until(lambda: ev.of("instance.oom_killed"), 30)
        assert await sup.wait_ready([s.id], timeout=30)  # restarted with backoff, the second run stays small
        st = sup.status(s.id)
        assert st is not None and st.restarts == 1 and st.oom_kills == 1 and st.restart_cause == "oom"
        assert st.last_exit is not None and "OOM" in st.last_exit and "200 MiB" in st.last_exit
        assert st.pid != first.pid
        assert group.oom_kills() >= 1
        killed = ev.of("instance.oom_killed")[0]
        assert killed["memory_limit"] == 200 * MIB and killed["backoff_s"] >= 1
        assert not ev.of("instance.crashed")
        await sup.stop(s.id)
        assert not any(d.exists() for d in group.dirs.values())  # its groups are removed with it
        await sup.close()

    run(scenario(), timeout=60)


def test_a_busy_loop_limited_to_a_fifth_of_a_core_uses_at_most_a_quarter(
        tmp_path: Path, cgroups: Cgroups, run: Callable[..., Any]) -> None:
    if "cpu" not in cgroups.bases() and "unified" not in cgroups.bases():
        pytest.skip("no cpu cgroup controller on this machine")
    ev = Events()
    s = spec(tmp_path, Limits(cpu=0.2), BUSY="1")

    async def scenario() -> tuple[float, float | None]:
        sup = Supervisor(clock=SystemClock(), on_change=ev.on_change, on_event=ev.on_event, cgroups=cgroups)
        st = await sup.start(s)
        assert await sup.wait_ready([s.id], timeout=30)
        assert st.pid is not None
        proc = psutil.Process(st.pid)
        group = cgroups.group(s.id)
        assert group is not None
        await asyncio.sleep(0.5)  # past the start (imports), measure the loop alone
        t0, cpu0, acct0 = time.monotonic(), sum(proc.cpu_times()[:2]), group.cpu_seconds()
        await asyncio.sleep(3.0)
        t1, cpu1, acct1 = time.monotonic(), sum(proc.cpu_times()[:2]), group.cpu_seconds()
        await sup.stop(s.id)
        await sup.close()
        share = (cpu1 - cpu0) / (t1 - t0)
        acct = (acct1 - acct0) / (t1 - t0) if acct0 is not None and acct1 is not None else None
        return share, acct

    share, acct = run(scenario(), timeout=60)
    print(f"busy loop limited to 0.2 CPU: psutil {share:.3f} cores, cgroup cpuacct {acct}")
    assert 0.02 < share <= 0.25
    if acct is not None:
        assert acct <= 0.25


def test_without_a_cgroup_memory_is_watched_and_an_instance_past_its_limit_is_killed(
        tmp_path: Path, run: Callable[..., Any]) -> None:
    ev = Events()
    s = spec(tmp_path, Limits(memory=120 * MIB), HOG_MIB="300", HOG_ONCE=str(tmp_path / "hogged"))

    async def scenario() -> None:
        sup = Supervisor(clock=SystemClock(), on_change=ev.on_change, on_event=ev.on_event, sample_interval=0.1)
        await sup.start(s)
        warned = ev.of("instance.limits_unenforced")
        assert warned and "not enforced" in warned[0]["message"]
        assert (first := sup.status(s.id)) is not None and first.limits_enforced == "watched"
        await until(lambda: ev.of("instance.oom_killed"), 30)
        assert await sup.wait_ready([s.id], timeout=30)
        st = sup.status(s.id)
        assert st is not None and st.oom_kills == 1 and st.restart_cause == "oom"
        assert st.last_exit is not None and "memory watch" in st.last_exit
        await sup.stop(s.id)
        await sup.close()

    run(scenario(), timeout=60)
