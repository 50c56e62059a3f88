"""Deploy orchestration, the routing state, the post-deploy watch and adoption, with fakes for the
supervisor and the router link: no subprocess, no socket, a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plane_fakes import FakeSupervisor, Plane, alive_pid, make_spec

from shipyard.control.deploys.adopt import adopt
from shipyard.control.deploys.inputs import DeployRequest
from shipyard.engine.analysis.measurements import Sample
from shipyard.engine.rollout.canary import expand
from shipyard.engine.rollout.canary_runner import CanaryRun, CanaryRunner
from shipyard.engine.rollout.steps import CanaryPhaseStep
from shipyard.engine.rollout.triggers import Triggers
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.metrics import bucket_bounds
from shipyard.primitives.spec.rollout import CanarySpec
from shipyard.primitives.store.records import InstanceRec


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    p = Plane(tmp_path / "proj")
    try:
        yield p
    finally:
        p.close()


def _deploy(plane: Plane, release: str, **env: Any) -> dict[str, Any]:
    spec = make_spec(plane.paths.project, **env)
    plan = plane.deploys.prepare(DeployRequest("deploy", "staging", release=release), spec)
    events: list[dict[str, Any]] = []
    result: dict[str, Any] = asyncio.run(plane.deploys.run(plan, events.append))
    return result


# -- deploy orchestration ----------------------------------------------------------------------------

def test_a_blue_green_deploy_runs_its_plan_and_records_the_switch(plane: Plane) -> None:
    plane.add_release("r1")
    first = _deploy(plane, "r1")
    assert first["outcome"] == "succeeded", first
    assert [s["name"] for s in first["steps"]] == ["start", "wait_ready", "route"]
    env = plane.store.get_environment("staging")
    assert env is not None and env.current_release == "r1"
    table = plane.link.tables[-1]
    assert table["port"] == 18200 and table["weights"] == {"r1": 100}
    assert sum(len(p["instances"]) for p in table["pools"]) == 2

    plane.add_release("r2", sha="b" * 40)
    second = _deploy(plane, "r2")
    assert second["outcome"] == "succeeded", second
    assert [s["name"] for s in second["steps"]] == ["start", "wait_ready", "route", "drain", "keep_warm"]
    env = plane.store.get_environment("staging")
    assert env is not None and (env.current_release, env.previous_release) == ("r2", "r1")
    assert plane.link.tables[-1]["weights"] == {"r2": 100}
    roles = {p["release"]: p["role"] for p in plane.link.tables[-1]["pools"]}
    assert roles == {"r1": "stable", "r2": "stable"}, "a warm release is labelled stable for the router"
    assert plane.targets.get("staging").routing.roles["r1"] == "old"


def test_instances_never_ready_fail_the_deploy_and_leave_the_old_release(tmp_path: Path) -> None:
    plane = Plane(tmp_path / "proj")
    try:
        plane.add_release("r1")
        assert _deploy(plane, "r1")["outcome"] == "succeeded"
        plane.supervisor.ready_on_start = False
        plane.add_release("r2", sha="b" * 40)
        res = _deploy(plane, "r2")
        assert res["outcome"] == "failed" and "not ready" in res["reason"]
        env = plane.store.get_environment("staging")
        assert env is not None and env.current_release == "r1"
        assert {s.release for s in plane.supervisor.all()} == {"r1"}, "the new instances were stopped"
        assert plane.link.tables[-1]["weights"] == {"r1": 100}
    finally:
        plane.close()


def test_a_second_deployment_on_the_environment_is_refused(plane: Plane) -> None:
    from shipyard.errors import LockHeld

    async def go() -> None:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        plane.registry.hold("staging", task, "a deployment")
        with pytest.raises(LockHeld):
            plane.deploys.check_free("staging")
        task.cancel()

    asyncio.run(go())


# -- the routing state ---------------------------------------------------------------------------------

def test_the_table_leaves_out_unrouted_instances_and_maps_our_roles(plane: Plane) -> None:
    plane.add_release("r1")
    _deploy(plane, "r1")
    rt = plane.targets.get("staging").routing
    ids = rt.ids_of("r1")
    rt.unrouted.add(ids[0])
    rt.roles["r1"] = "old"
    table = rt.table().to_wire()
    assert [i["id"] for p in table["pools"] for i in p["instances"]] == ids[1:]
    assert table["pools"][0]["role"] == "stable"
    # Saved and restored whole: a restarted control plane finds the same picture.
    rt.save()
    again = Plane(plane.paths.project)
    try:
        restored = again.targets.get("staging").routing
        assert (restored.port, restored.weights, restored.unrouted) == (rt.port, rt.weights, rt.unrouted)
        assert restored.launch["r1"] == rt.launch["r1"]
    finally:
        again.close()


# -- drain: not knowing is not "nothing in flight" (failed before the fix) ------------------------------------

def test_a_drain_waits_when_the_router_cannot_say_what_is_in_flight(plane: Plane) -> None:
    target = plane.targets.get("staging")
    plane.link.stats_error = "unknown environment 'staging'"
    res = asyncio.run(target.drain(None, ["i1"], timeout=2.0))
    assert not res.drained and res.reason and "could not say" in res.reason
    assert plane.clock.monotonic() >= 2.0, "it waited out its timeout instead of ending at once"
    plane.link.stats_error = None
    assert asyncio.run(target.drain(None, ["i1"], timeout=2.0)).drained


# -- the canary runs the steps the plan carries (the index join failed before the fix) ----------------------

def test_the_canary_runner_acts_on_the_planned_step_not_a_fresh_expansion(plane: Plane) -> None:
    planned = tuple(expand(CanarySpec.model_validate({"steps": [{"weight": 30}, 100]})))
    edited = tuple(expand(CanarySpec.model_validate({"steps": [{"weight": 5}, {"weight": 6}, 100]})))
    calls: list[dict[str, int]] = []

    class Target:
        async def set_weights(self, weights: dict[str, int], commit: Any) -> None:
            calls.append(dict(weights))

    class NoMetrics:
        end = None
        bounds = staticmethod(bucket_bounds)

    run = CanaryRun("staging", "r2", "r1", CanarySpec(), edited)  # the spec as it reads now
    target: Any = Target()
    metrics: Any = NoMetrics()
    runner = CanaryRunner(run, target, metrics, Triggers((), ManualClock()), ManualClock(), lambda k, m: None)
    step = CanaryPhaseStep(description=planned[0].description, phase=planned[0], release="r2", stable="r1")
    asyncio.run(runner.perform(step))
    assert calls == [{"r2": 30, "r1": 70}]
    assert run.step is not None and run.step["weight"] == 30


# -- the post-deploy watch ----------------------------------------------------------------------------------

def test_the_watch_rolls_back_when_a_trigger_fires(plane: Plane) -> None:
    plane.add_release("r1")
    _deploy(plane, "r1")
    plane.add_release("r2", sha="b" * 40)
    spec = make_spec(plane.paths.project, rollback={"error_rate": {"above": "5%", "for": "2s"}}, watch="1h")
    plan = plane.deploys.prepare(DeployRequest("deploy", "staging", release="r2"), spec)
    assert plan.watches
    rolled: list[tuple[str, str, str]] = []

    async def rollback(env: str, to: str, note: str, trigger: dict[str, Any]) -> None:
        rolled.append((env, to, note))

    class Metrics:
        def __init__(self) -> None:
            self.end: int | None = None
            self.bounds = bucket_bounds
            self.samples: list[Sample] = []

        async def next_tick(self, timeout: float = 3.0) -> bool:
            t = int(plane.clock.time()) if self.end is None else self.end
            self.samples.append(Sample(t, "r2", "i1", requests=100, errors=50))
            self.end = t + 1
            plane.clock.advance(1.0)
            await asyncio.sleep(0)
            return True

        def since(self, t: int) -> Iterator[Sample]:
            return (s for s in self.samples if s.t >= t)

    metrics = Metrics()

    class Observe:
        async def __aenter__(self) -> Metrics:
            return metrics

        async def __aexit__(self, *exc: Any) -> None:
            return None

    target = plane.targets.get("staging")
    target.observe = lambda: Observe()  # type: ignore[method-assign,assignment,return-value]
    plane.deploys.watches.rollback = rollback

    async def go() -> None:
        assert plane.deploys.watches.start(plan) is not None
        w = plane.registry.watch("staging")
        assert w is not None and w.task is not None
        await asyncio.wait_for(w.task, 5)

    asyncio.run(go())
    assert rolled and rolled[0][:2] == ("staging", "r1")
    assert "automatic rollback by the post-deploy watch" in rolled[0][2]
    assert plane.registry.watch("staging") is None


# -- adoption --------------------------------------------------------------------------------------------------

def _crashed(tmp_path: Path, alive: int) -> tuple[Plane, list[str]]:
    """A plane that deployed r1 (2 instances) and died; ``alive`` of its instances still run (this very
    process stands in for them), the others are gone. Returns the new plane, not yet adopted, and the ids."""
    first = Plane(tmp_path / "proj")
    first.add_release("r1")
    _deploy(first, "r1")
    ids = first.targets.get("staging").routing.ids_of("r1")
    first.close()
    pid, ct = alive_pid()
    again = Plane(tmp_path / "proj", FakeSupervisor())
    recs = {r.id: r for r in again.store.list_instances("staging")}
    for n, iid in enumerate(ids):
        live = {"pid": pid, "create_time": ct} if n < alive else {"pid": 0}
        again.store.upsert_instance(InstanceRec(**{**recs[iid].__dict__, **live}))
    return again, ids


def _adopt(plane: Plane) -> None:
    sup: Any = plane.supervisor
    asyncio.run(adopt(store=plane.store, targets=plane.targets, supervisor=sup, events=plane.events,
                      clock=plane.clock, spec=make_spec(plane.paths.project)))


def test_adoption_takes_back_live_instances_and_starts_the_missing_ones(tmp_path: Path) -> None:
    again, ids = _crashed(tmp_path, alive=1)
    try:
        _adopt(again)
        assert again.supervisor.adopted == [ids[0]], "the live instance is adopted, never started twice"
        running = again.targets.get("staging").routing.ids_of("r1")
        assert len(running) == 2 and ids[0] in running, "the missing one was started"
        assert again.link.tables[-1]["weights"] == {"r1": 100}
        kinds = [e.kind for e in again.store.list_events("staging")]
        assert "restore" in kinds
    finally:
        again.close()


def test_adoption_pushes_no_table_of_unready_instances(tmp_path: Path) -> None:
    """After a control-plane crash the router serves with its last table; re-adopted instances are "not
    ready" until probed, and a table saying so would turn every request into a 503 (failed before the fix)."""
    again, _ = _crashed(tmp_path, alive=2)
    try:
        again.targets.get("staging")  # known, as at start-up
        _adopt(again)
        assert again.link.tables, "adoption ends with one consistent table"
        for table in again.link.tables:
            ready = [i for p in table["pools"] for i in p["instances"] if i["ready"]]
            assert ready, f"a table with no ready instance reached the router: {table}"
    finally:
        again.close()
