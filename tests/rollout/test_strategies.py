"""Strategies are pure: (settings, state, target) → steps. Table-driven checks of their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.engine.rollout.steps import Step
from shipyard.engine.rollout.strategies import (
    RolloutSettings,
    plan_blue_green,
    plan_deploy,
    plan_rollback,
    plan_rolling,
)
from shipyard.errors import BadInput


def state(current: str | None, n: int, *, previous: str | None = None, warm: int = 0) -> EnvState:
    insts = [InstanceView(f"{current}-{i}", current, True) for i in range(n)] if current else []
    insts += [InstanceView(f"{previous}-{i}", previous, True, "old") for i in range(warm)] if previous else []
    return EnvState("staging", current, previous, tuple(insts), {current: 100} if current else {})


def simulate(steps: list[Step], st0: EnvState, target: str) -> list[tuple[int, int, int]]:
    """Replay a plan; after each step return (ready routed instances, running instances, routed weight sum)."""
    running: dict[str, str] = {i.id: i.release for i in st0.instances}
    routed = {i.id for i in st0.instances if i.release == st0.current_release}
    weights = dict(st0.weights)
    tags: dict[str, list[str]] = {}
    trace = []
    n = 0
    for step in steps:
        p = step.params
        if step.kind == "start":
            ids = [f"new{n + k}" for k in range(p["count"])]
            n += p["count"]
            tags[p["tag"]] = ids
            for i in ids:
                running[i] = target
        elif step.kind == "route":
            weights = dict(p["weights"])
            routed |= {i for i, r in running.items() if weights.get(r, 0) > 0}
        elif step.kind == "unroute":
            routed -= set(p["ids"])
            if p.get("weights"):
                weights = dict(p["weights"])
        elif step.kind == "stop":
            ids = p.get("ids") or [i for i, r in running.items() if r == p.get("release")]
            for i in ids:
                running.pop(i, None)
                routed.discard(i)
        serving = [i for i in routed if i in running and weights.get(running[i], 0) > 0]
        trace.append((len(serving), len(running), sum(weights.values())))
    return trace


def test_blue_green_first_deploy() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=3), state(None, 0), "B")
    assert [s.kind for s in steps] == ["start", "wait_ready", "route"]
    assert steps[-1].params["commit"] == {"current": "B", "previous": None}


def test_blue_green_switches_in_one_step_and_keeps_old_warm() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=3, scale_down_delay=120), state("A", 3), "B")
    assert [s.kind for s in steps] == ["start", "wait_ready", "route", "drain", "keep_warm"]
    assert steps[2].params["weights"] == {"B": 100}
    assert steps[4].params == {"release": "A", "delay": 120}


def test_blue_green_stops_an_older_warm_release_first() -> None:
    steps = plan_blue_green(RolloutSettings(replicas=2), state("B", 2, previous="A", warm=2), "C")
    assert steps[0].kind == "stop" and steps[0].params == {"release": "A"}


@pytest.mark.parametrize("replicas,surge,unavail", [(1, 1, 0), (3, 1, 0), (3, 2, 0), (4, 1, 1), (3, 0, 1),
                                                    (5, 2, 2), (2, 3, 0)])
def test_rolling_keeps_capacity_and_bounds(replicas: int, surge: int, unavail: int) -> None:
    s = RolloutSettings(replicas=replicas, max_surge=surge, max_unavailable=unavail)
    st0 = state("A", replicas)
    steps = plan_rolling(s, st0, "B")
    trace = simulate(steps, st0, "B")
    for _serving, running, wsum in trace:
        assert running <= replicas + max(surge, 0) + unavail
        assert wsum == 100
    # Capacity never drops below replicas - max_unavailable once a step completes (ready-before-routed).
    assert min(t[0] for t in trace) >= replicas - unavail
    assert steps[-1].params["weights"] == {"B": 100}
    assert trace[-1][1] == replicas


@given(replicas=st.integers(1, 8), surge=st.integers(0, 4), unavail=st.integers(0, 4))
def test_rolling_always_converges(replicas: int, surge: int, unavail: int) -> None:
    s = RolloutSettings(replicas=replicas, max_surge=surge, max_unavailable=unavail)
    if surge == 0 and unavail == 0:
        with pytest.raises(BadInput):
            plan_rolling(s, state("A", replicas), "B")
        return
    steps = plan_rolling(s, state("A", replicas), "B")
    started = sum(step.params["count"] for step in steps if step.kind == "start")
    stopped = sum(len(step.params["ids"]) for step in steps if step.kind == "stop" and "ids" in step.params)
    assert started == replicas and stopped == replicas


def test_same_release_blue_green_becomes_rolling_replace() -> None:
    steps = plan_deploy("blue-green", RolloutSettings(replicas=2), state("A", 2), "A")
    assert "keep_warm" not in [s.kind for s in steps]
    assert sum(s.params.get("count", 0) for s in steps if s.kind == "start") == 2


def test_rollback_warm_is_a_single_switch() -> None:
    steps, warm = plan_rollback(RolloutSettings(replicas=2), state("B", 2, previous="A", warm=2), "A")
    assert warm and steps[0].kind == "route" and steps[0].params["weights"] == {"A": 100}


def test_rollback_cold_is_a_blue_green_deploy() -> None:
    steps, warm = plan_rollback(RolloutSettings(replicas=2), state("B", 2, previous="A", warm=0), "A")
    assert not warm and [s.kind for s in steps][:3] == ["start", "wait_ready", "route"]


def test_rollback_to_serving_release_is_refused() -> None:
    with pytest.raises(BadInput):
        plan_rollback(RolloutSettings(replicas=2), state("B", 2), "B")


def test_unknown_strategy() -> None:
    with pytest.raises(BadInput, match="unknown strategy"):
        plan_deploy("yolo", RolloutSettings(replicas=1), state(None, 0), "A")
