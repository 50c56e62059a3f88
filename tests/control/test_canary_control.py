"""A running canary's operator handle (pause/resume/promote/abort) and its crash check.

``CanaryRun.control`` only records what the operator asked; the live loop acts on it (its decisions are
``engine.rollout.canary.decide``, tested in tests/analysis/test_analysis_canary.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shipyard.control.collector import Collector
from shipyard.engine.analysis.measurements import Sample
from shipyard.engine.rollout.canary import canary_triggers, expand
from shipyard.engine.rollout.canary_runner import COMMANDS, CanaryRollback, CanaryRun, CanaryRunner
from shipyard.engine.rollout.triggers import Triggers
from shipyard.errors import BadInput, DeployFailed, Refused
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.rollout import CanarySpec

NOTHING: Any = SimpleNamespace()  # what is checked here never reaches the target or the router


def new_run(**kw: Any) -> CanaryRun:
    return CanaryRun("prod", "r2", "r1", CanarySpec(), **kw)


def fields(run: CanaryRun) -> tuple[Any, ...]:
    return run.command, run.paused, run.resumed


def test_pause_then_resume() -> None:
    run = new_run()
    said = run.control("pause")
    assert fields(run) == (None, True, False)
    assert "resume" in said and "promote" in said
    assert run.to_json()["paused"] is True
    assert run.control("resume") == "resumed"
    assert fields(run) == (None, False, True)


def test_resume_when_not_paused_is_refused() -> None:
    run = new_run()
    with pytest.raises(Refused, match="the canary on prod is not paused") as info:
        run.control("resume")
    assert info.value.exit_code == 3
    assert fields(run) == (None, False, False)


@pytest.mark.parametrize("paused", [False, True])
def test_promote_and_promote_full_unpause(paused: bool) -> None:
    for command, says in (("promote", "the current step ends now"), ("promote_full", "remaining steps skipped")):
        run = new_run(paused=paused)
        assert says in run.control(command)
        assert fields(run) == (command, False, False)


def test_abort_keeps_a_pause_and_wins_later() -> None:
    run = new_run(paused=True)
    assert "traffic back to the stable release" in run.control("abort")
    # Paused stays as it is: the decision rolls back whether paused or not.
    assert fields(run) == ("abort", True, False)
    run.control("promote")
    assert run.command == "promote", "the latest command is the one the loop sees"


def test_unknown_command_is_bad_input_and_changes_nothing() -> None:
    run = new_run(paused=True)
    with pytest.raises(BadInput) as info:
        run.control("rollback")
    assert info.value.exit_code == 2
    assert "'rollback'" in str(info.value) and all(c in str(info.value) for c in COMMANDS)
    assert fields(run) == (None, True, False)


def _collector_with(samples: list[Sample], end: int) -> Collector:
    col = Collector(NOTHING, NOTHING, ManualClock(), "prod")
    col.samples.extend(samples)
    col.end = end
    return col


def test_a_crashing_canary_rolls_back_before_more_traffic() -> None:
    spec = CanarySpec()  # max_restarts = 0: one restart is too many
    run = new_run(steps=tuple(expand(spec)), weight=10, first_sec=100)
    triggers = Triggers(canary_triggers(spec, None), ManualClock())

    def check_now(col: Collector) -> None:
        CanaryRunner(run, NOTHING, col, triggers, ManualClock(), lambda kind, msg: None).check_now()
    stable = [Sample(t, "r1", "s1", requests=45, restarts=3 if t == 103 else None) for t in range(100, 104)]

    def canary(restarts: int) -> list[Sample]:
        return [Sample(t, "r2", "c1", requests=5, restarts=restarts if t == 103 else None) for t in range(100, 104)]

    check_now(_collector_with([*stable, *canary(0)], 104))  # the stable release restarting is not the canary's problem

    with pytest.raises(CanaryRollback) as info:
        check_now(_collector_with([*stable, *canary(1)], 104))
    err = info.value
    assert isinstance(err, DeployFailed) and "restarts" in str(err)
    (failing,) = err.detail["canary"]["failing"]
    assert failing["instance"] == "c1" and failing["release"] == "r2" and failing["value"] == 1.0
    assert failing["condition"].startswith("restarts:")
    assert err.detail["canary"]["weight"] == 10

    # Before the canary had traffic there is nothing to check.
    run.first_sec = None
    check_now(_collector_with([*stable, *canary(1)], 104))
