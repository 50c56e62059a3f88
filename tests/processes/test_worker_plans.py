"""The other process types in the pure strategies: where their start and stop steps go."""

from __future__ import annotations

import pytest

from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.engine.rollout.steps import RouteStep, StartStep, StopStep, WaitReadyStep
from shipyard.engine.rollout.strategies import RolloutSettings, WorkerSettings, plan_deploy, plan_rollback

WORKER = WorkerSettings("worker", replicas=2, grace=60.0)
STATE = EnvState(env="prod", current_release="r1", previous_release=None, instances=(
    InstanceView("web-0", "r1", True), InstanceView("w-0", "r1", True, process="worker"),
    InstanceView("w-1", "r1", True, process="worker")), weights={"r1": 100})


def _commit(steps: list) -> int:  # type: ignore[type-arg]
    return next(i for i, s in enumerate(steps) if isinstance(s, RouteStep) and s.commit is not None)


@pytest.mark.parametrize("strategy", ["blue-green", "rolling", "canary"])
def test_new_workers_start_before_the_switch_and_old_ones_stop_after_it(strategy: str) -> None:
    from shipyard.engine.rollout.canary import expand
    from shipyard.primitives.spec.rollout import CanarySpec

    s = RolloutSettings(replicas=1, workers=(WORKER,), canary_steps=tuple(expand(CanarySpec())))
    steps = plan_deploy(strategy, s, STATE, "r2")
    at = _commit(steps)
    starts = [i for i, st in enumerate(steps) if isinstance(st, StartStep) and st.process == "worker"]
    assert len(starts) == 1 and starts[0] < at
    start = steps[starts[0]]
    assert isinstance(start, StartStep) and start.count == 2 and start.release == "r2"
    assert isinstance(steps[starts[0] + 1], WaitReadyStep)
    stops = [st for st in steps[at + 1:] if isinstance(st, StopStep) and st.ids == ("w-0", "w-1")]
    assert len(stops) == 1 and "grace 60s" in stops[0].description
    # Nothing stops the old workers before the switch is final (a canary's phases, a preview).
    assert not any(isinstance(st, StopStep) and st.ids and "w-0" in st.ids for st in steps[:at])
    # Web instances are not counted as workers and vice versa.
    web_starts = [st for st in steps if isinstance(st, StartStep) and st.process is None]
    assert web_starts and all(st.count == 1 for st in web_starts)


def test_without_surge_old_workers_stop_before_the_new_ones_start() -> None:
    s = RolloutSettings(replicas=1, workers=(WorkerSettings("beat", 1, 10.0, surge=False),))
    state = EnvState(env="prod", current_release="r1", previous_release=None, instances=(
        InstanceView("web-0", "r1", True), InstanceView("b-0", "r1", True, process="beat")))
    steps = plan_deploy("blue-green", s, state, "r2")
    at = _commit(steps)
    kinds = [type(st).__name__ for st in steps[:at] if getattr(st, "process", None) == "beat"
             or isinstance(st, StopStep) and st.ids == ("b-0",)]
    assert kinds == ["StopStep", "StartStep"]


def test_a_rollback_brings_the_old_release_workers_back() -> None:
    s = RolloutSettings(replicas=1, workers=(WORKER,))
    state = EnvState(env="prod", current_release="r2", previous_release="r1", instances=(
        InstanceView("web-r1", "r1", True, role="old"), InstanceView("web-r2", "r2", True),
        InstanceView("w-r2", "r2", True, process="worker")), weights={"r2": 100})
    steps, warm = plan_rollback(s, state, "r1")
    assert warm  # the old web set is warm: a router switch, plus its workers
    at = _commit(steps)
    assert any(isinstance(st, StartStep) and st.process == "worker" and st.release == "r1" for st in steps[:at])
    assert any(isinstance(st, StopStep) and st.ids == ("w-r2",) for st in steps[at + 1:])


def test_no_workers_no_change() -> None:
    s = RolloutSettings(replicas=1)
    state = EnvState(env="prod", current_release="r1", previous_release=None,
                     instances=(InstanceView("web-0", "r1", True),))
    steps = plan_deploy("blue-green", s, state, "r2")
    assert not any(getattr(st, "process", None) for st in steps)


def test_old_workers_stop_only_after_a_verification_that_follows_the_switch() -> None:
    from shipyard.engine.rollout.steps import VerifyStep

    s = RolloutSettings(replicas=1, workers=(WORKER,), verify=True)
    steps = plan_deploy("blue-green", s, STATE, "r2")
    at = _commit(steps)
    verify = next(i for i, st in enumerate(steps) if isinstance(st, VerifyStep))
    stop = next(i for i, st in enumerate(steps) if isinstance(st, StopStep) and st.ids == ("w-0", "w-1"))
    assert at < verify < stop
