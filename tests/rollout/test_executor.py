"""The executor runs steps in order, records each, and restores the old release on failure."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout.fakes import TargetRunners
from shipyard.engine.rollout.executor import execute
from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.engine.rollout.steps import Step
from shipyard.engine.rollout.strategies import RolloutSettings, plan_blue_green
from shipyard.engine.rollout.target import DrainResult
from shipyard.errors import DeployFailed
from shipyard.primitives.clock import ManualClock


class FakeTarget:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_on = fail_on
        self.n = 0

    async def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name == self.fail_on:
            raise DeployFailed(f"{name} broke")

    async def start(self, release: str, count: int, role: str) -> list[str]:
        await self._call("start", release, count)
        ids = [f"i{self.n + k}" for k in range(count)]
        self.n += count
        return ids

    async def wait_ready(self, ids: list[str], timeout: float) -> None:
        await self._call("wait_ready", ids)

    async def set_weights(self, weights: Any, commit: Any) -> None:
        await self._call("route", dict(weights))

    async def unroute(self, ids: Any, weights: Any) -> None:
        await self._call("unroute", ids)

    async def drain(self, release: str | None, ids: Any, timeout: float) -> DrainResult:
        await self._call("drain", release)
        return DrainResult(True, 0)

    async def stop(self, ids: Any, release: str | None) -> None:
        await self._call("stop", list(ids) if ids else release)

    async def keep_warm(self, release: str, delay: float) -> None:
        await self._call("keep_warm", release)

    async def verify(self, release: str, preview: bool) -> dict[str, Any]:
        await self._call("verify", release)
        return {"go": True}

    async def recover(self, serving: str | None, started: list[str], committed: bool) -> None:
        self.calls.append(("recover", (serving, started, committed)))


class ListRecorder:
    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def step_started(self, index: int, step: Step, at: float) -> int:
        self.rows.append([index, step.kind, "running", None])
        return len(self.rows) - 1

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None:
        self.rows[step_id][2:] = [status, duration_s]


def _state() -> EnvState:
    return EnvState("s", "A", None, tuple(InstanceView(f"a{i}", "A", True) for i in range(2)), {"A": 100})


def test_all_steps_succeed_and_are_recorded() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=2), _state(), "B")
    target, rec = FakeTarget(), ListRecorder()
    res = asyncio.run(execute(steps, target, TargetRunners(target), rec, ManualClock(), serving="A"))
    assert res.ok and res.committed
    assert [c[0] for c in target.calls] == ["start", "wait_ready", "route", "drain", "keep_warm"]
    assert target.calls[1][1][0] == ["i0", "i1"], "wait_ready gets the ids its start step produced"
    assert [r[2] for r in rec.rows] == ["succeeded"] * 5


def test_failure_before_switch_restores_old_and_skips_the_rest() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=2), _state(), "B")
    target, rec = FakeTarget(fail_on="wait_ready"), ListRecorder()
    res = asyncio.run(execute(steps, target, TargetRunners(target), rec, ManualClock(), serving="A"))
    assert not res.ok and not res.committed and "wait_ready broke" in (res.reason or "")
    assert target.calls[-1] == ("recover", ("A", ["i0", "i1"], False))
    assert [r.status for r in res.results] == ["succeeded", "failed", "skipped", "skipped", "skipped"]
    assert "route" not in [c[0] for c in target.calls]


def test_failure_after_switch_rolls_back() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=2, verify=True), _state(), "B")
    target = FakeTarget(fail_on="verify")
    res = asyncio.run(execute(steps, target, TargetRunners(target), ListRecorder(), ManualClock(), serving="A"))
    assert not res.ok and res.committed
    assert target.calls[-1] == ("recover", ("A", ["i0", "i1"], True))
