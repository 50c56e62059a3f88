"""A running canary's operator handle (pause/resume/promote/abort) and its crash check.

``CanaryRun.control`` only records what the operator asked; the live loop acts on it (its decisions are
``engine.rollout.canary.decide``, tested in tests/analysis/test_analysis_canary.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shipyard.control.canary import COMMANDS, CanaryRollback, CanaryRun, _check_now, start_run
from shipyard.control.collector import Collector
from shipyard.control.triggers import Triggers
from shipyard.engine.analysis.measurements import Sample
from shipyard.engine.rollout.canary import canary_triggers, expand
from shipyard.errors import BadInput, DeployFailed, Refused
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec

NO_DAEMON: Any = SimpleNamespace()  # what is checked here never reaches the daemon


def new_run(**kw: Any) -> CanaryRun:
    return CanaryRun("prod", "r2", "r1", CanarySpec(), None, **kw)


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


def test_start_run_registers_steps_and_crash_check() -> None:
    spec = CanarySpec.model_validate({"steps": [10, 50, 100], "step_duration": "30s", "max_restarts": 2})
    rollback = RollbackSpec.model_validate({"error_rate": {"above": "5%", "for": "1m"}})
    d: Any = SimpleNamespace(canaries={}, clock=ManualClock())
    events: list[dict[str, Any]] = []
    run = start_run(d, "prod", "r2", "r1", SimpleNamespace(canary=spec, rollback=rollback), events.append)
    assert d.canaries == {"prod": run}
    assert (run.release, run.stable, run.rollback) == ("r2", "r1", rollback)
    assert run.steps == expand(spec)
    assert run.triggers is not None
    assert run.triggers.sample_conditions == list(canary_triggers(spec, rollback))
    run.emit({"event": "x"})
    assert events == [{"event": "x"}]
    # No canary section (strategy given on the command line): the defaults apply.
    other = start_run(d, "stg", "r2", "r1", SimpleNamespace(canary=None, rollback=None), events.append)
    assert other.steps == expand(CanarySpec()) and d.canaries["stg"] is other


def _collector_with(samples: list[Sample], end: int) -> Collector:
    col = Collector(NO_DAEMON, "prod")
    col.samples.extend(samples)
    col.end = end
    return col


def test_a_crashing_canary_rolls_back_before_more_traffic() -> None:
    spec = CanarySpec()  # max_restarts = 0: one restart is too many
    run = new_run(steps=expand(spec), weight=10, first_sec=100)
    run.triggers = Triggers(canary_triggers(spec, None), ManualClock())
    stable = [Sample(t, "r1", "s1", requests=45, restarts=3 if t == 103 else None) for t in range(100, 104)]

    def canary(restarts: int) -> list[Sample]:
        return [Sample(t, "r2", "c1", requests=5, restarts=restarts if t == 103 else None) for t in range(100, 104)]

    run.collector = _collector_with([*stable, *canary(0)], 104)
    _check_now(NO_DAEMON, run)  # the stable release restarting is not the canary's problem

    run.collector = _collector_with([*stable, *canary(1)], 104)
    with pytest.raises(CanaryRollback) as info:
        _check_now(NO_DAEMON, run)
    err = info.value
    assert isinstance(err, DeployFailed) and "restarts" in str(err)
    (failing,) = err.detail["canary"]["failing"]
    assert failing["instance"] == "c1" and failing["release"] == "r2" and failing["value"] == 1.0
    assert failing["condition"].startswith("restarts:")
    assert err.detail["canary"]["weight"] == 10

    # Before the canary had traffic there is nothing to check.
    run.first_sec = None
    _check_now(NO_DAEMON, run)
