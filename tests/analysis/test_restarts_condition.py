"""The ``restarts`` condition (the canary's crash check) and ``canary.max_restarts``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shipyard.engine.analysis.conditions import Condition, conditions_from_spec, evaluate, evaluate_all
from shipyard.engine.analysis.measurements import Sample, Window
from shipyard.engine.rollout.canary import canary_triggers, plan_lines
from shipyard.errors import ConfigError
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec

ONE = Condition("restarts", 1.0, "at_least")


def readings(values: dict[int, int | None], instance: str = "c1", release: str = "r2") -> list[Sample]:
    return [Sample(t, release, instance, requests=1, restarts=v) for t, v in sorted(values.items())]


def test_fires_on_the_latest_reading_at_the_threshold() -> None:
    e = evaluate(ONE, readings({8: None, 9: 1}), 10, release="r2", instance="c1")
    assert e.firing and e.value == 1.0 and e.held_s == 0.0
    assert (e.start, e.end, e.release, e.instance) == (9, 10, "r2", "c1")
    assert e.reason == "1 restarts since the analysis began (limit 1)"
    assert not evaluate(Condition("restarts", 3.0, "at_least"), readings({9: 2}), 10).firing
    assert evaluate(Condition("restarts", 3.0, "at_least"), readings({9: 3}), 10).firing


def test_quiet_without_a_reading() -> None:
    e = evaluate(ONE, readings({7: None, 8: None, 9: None}), 10)
    assert not e.firing and e.value is None and e.reason == "no restarts reading"
    assert not evaluate(ONE, [], 10).firing


def test_only_the_last_resolution_seconds_count() -> None:
    # for = 0 → one point, resolution 1: a reading older than the newest second is no data (the collector
    # attaches a reading to the newest second of every pull).
    assert ONE.resolution == 1
    assert not evaluate(ONE, readings({8: 5, 9: None}), 10).firing
    # The latest reading wins, not the worst one in the window.
    assert Window.of(readings({7: 4, 8: 0, 9: None}), 0, 10).restarts == 0


def test_evaluate_all_is_per_instance_and_limited_to_the_release() -> None:
    samples = [*readings({9: 0}, "c1"), *readings({9: 2}, "c2"), *readings({9: 7}, "s1", release="r1")]
    evs = evaluate_all([ONE], samples, 10, releases=["r2"])
    assert [(e.instance, e.firing, e.value) for e in evs] == [("c1", False, 0.0), ("c2", True, 2.0)]


def test_describe_and_format() -> None:
    c = Condition("restarts", 3.0, "at_least")
    assert c.describe() == "restarts: an instance restarted (crashed) 3 time(s) during the analysis"
    assert c.format_value(2.0) == "2 restarts"


@pytest.mark.parametrize("max_restarts", [0, 1, 5])
def test_canary_triggers_add_the_crash_check(max_restarts: int) -> None:
    rollback = RollbackSpec.model_validate({"error_rate": {"above": "5%", "for": "1m"}, "health_failures": 3})
    spec = CanarySpec(max_restarts=max_restarts)
    got = canary_triggers(spec, rollback)
    assert got == (*conditions_from_spec(rollback), Condition("restarts", max_restarts + 1.0, "at_least"))
    assert canary_triggers(spec, None) == (Condition("restarts", max_restarts + 1.0, "at_least"),)
    assert f"more than {max_restarts} time(s) rolls back" in "\n".join(plan_lines(spec, None))
    # max_restarts restarts pass, one more fires.
    (check,) = canary_triggers(spec, None)
    assert not evaluate(check, readings({9: max_restarts}), 10).firing
    assert evaluate(check, readings({9: max_restarts + 1}), 10).firing


def _doc(canary: dict[str, Any]) -> dict[str, Any]:
    return {"app": {"name": "svc", "run": "python3 app.py", "health": {"path": "/health"}},
            "environments": {"staging": {"port": 8200, "strategy": "canary", "canary": canary}}}


def test_max_restarts_validation() -> None:
    assert CanarySpec().max_restarts == 0
    assert CanarySpec.model_validate({"max_restarts": 2}).max_restarts == 2
    for bad in (-1, "x", 1.5):
        with pytest.raises(ValidationError):
            CanarySpec.model_validate({"max_restarts": bad})
    with pytest.raises(ConfigError) as info:
        parse_spec(_doc({"max_restarts": -2}), Path("shipyard.toml"))
    assert "environments.staging.canary.max_restarts: must be at least 0, got -2" in str(info.value)
    assert info.value.exit_code == 2
    spec = parse_spec(_doc({"max_restarts": 4}), Path("shipyard.toml"))
    canary = spec.environments["staging"].canary
    assert canary is not None and canary.max_restarts == 4
