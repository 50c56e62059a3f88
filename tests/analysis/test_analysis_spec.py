from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shipyard.primitives.spec.rollout import (
    AnalysisStep,
    CanarySpec,
    PauseStep,
    RollbackSpec,
    WeightStep,
)

ISSUE_ROLLBACK = {
    "error_rate": {"above": "5%", "for": "5m"},
    "p95": {"above": "2s", "for": "3m"},
    "cpu": {"above": "90%", "for": "5m"},
    "memory": {"above": "95%", "for": "3m"},
    "health_failures": 3,
}


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in exc.value.errors()]


def test_issue_canary_table_as_written() -> None:
    c = CanarySpec.model_validate({"steps": [10, 50, 100], "step_duration": "20s"})
    assert c.steps == [10, 50, 100] and c.short_form
    assert c.step_duration == 20.0


def test_canary_defaults_are_documented_values() -> None:
    c = CanarySpec()
    assert (c.min_samples, c.confidence, c.error_tolerance) == (100, 0.9999, 0.01)
    assert (c.error_tolerance_relative, c.latency_tolerance, c.latency_tolerance_min) == (0.5, 0.2, 0.01)
    assert c.inconclusive_limit == 120.0


def test_full_step_list() -> None:
    c = CanarySpec.model_validate({
        "steps": [{"weight": 10}, {"pause": "1m"}, {"pause": {}}, {"analysis": "smoke"}, 50,
                  {"pause": {"duration": "30s"}}],
        "analysis": {"smoke": {"duration": "30s", "p99": {"above": "500ms", "for": "10s"}}},
    })
    assert not c.short_form
    assert c.steps[0] == WeightStep(weight=10)
    assert c.steps[1] == PauseStep(pause=60.0)
    assert isinstance(c.steps[2], PauseStep) and c.steps[2].manual
    assert c.steps[3] == AnalysisStep(analysis="smoke")
    assert c.steps[4] == WeightStep(weight=50)  # a bare number in a mixed list is a weight step
    assert c.steps[5] == PauseStep(pause=30.0)
    smoke = c.analysis["smoke"]
    assert smoke.duration == 30.0 and smoke.p99 is not None and smoke.p99.above == 0.5


@pytest.mark.parametrize(("steps", "needle"), [
    ([], "at least one step"),
    ([0, 50], "between 1 and 100"),
    ([10, 101], "between 1 and 100"),
    ([{"pause": {}}], "at least one weight step"),
    ([{"wait": "1m"}, 10], "expected a weight"),
    ([{"weight": 10, "pause": "1m"}], "expected a weight"),
    ([{"weight": 0}], "greater than or equal to 1"),
    ([{"pause": "0s"}, 10], "pause must be positive"),
    ([10, {"pause": "soon"}], "expected a duration"),
    ([10, {"pause": {"until": "x"}}], "manual gate"),
    ([{"pause": "1m"}, 10], "no canary traffic"),
    ([10, {"analysis": "nope"}], "unknown analysis 'nope'"),
])
def test_bad_steps_are_named(steps: list[Any], needle: str) -> None:
    msgs = " | ".join(m for _, m in errors_of(CanarySpec, {"steps": steps}))
    assert needle in msgs


def test_manual_gate_before_first_weight_is_fine() -> None:
    c = CanarySpec.model_validate({"steps": [{"pause": {}}, {"weight": 20}]})
    assert isinstance(c.steps[0], PauseStep) and c.steps[0].manual


def test_builtin_canary_analysis_name() -> None:
    CanarySpec.model_validate({"steps": [10, {"analysis": "canary"}]})


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("confidence", "40%", "at least 50%"),
    ("confidence", "100%", "below 100%"),
    ("min_samples", 3, "greater than or equal to 10"),
    ("error_tolerance", "120%", "between 0% and 100%"),
    ("step_duration", "forever", "expected a duration"),
    ("stepduration", "20s", "Extra inputs"),
])
def test_bad_judgement_settings(key: str, value: object, needle: str) -> None:
    msgs = " | ".join(m for _, m in errors_of(CanarySpec, {key: value}))
    assert needle in msgs


def test_issue_rollback_table_as_written() -> None:
    r = RollbackSpec.model_validate(ISSUE_ROLLBACK)
    assert r.error_rate is not None and (r.error_rate.above, r.error_rate.for_) == (0.05, 300.0)
    assert r.p95 is not None and (r.p95.above, r.p95.for_) == (2.0, 180.0)
    assert r.cpu is not None and (r.cpu.above, r.cpu.for_) == (0.9, 300.0)
    assert r.memory is not None and (r.memory.above, r.memory.for_) == (0.95, 180.0)
    assert r.health_failures == 3
    assert r.prometheus == []


def test_rollback_extra_kinds() -> None:
    r = RollbackSpec.model_validate({
        "p50": {"above": "300ms"},
        "p99": {"above": "1.5s", "for": "30s"},
        "request_rate": {"below": "120/m", "for": "2m"},
        "cpu": {"above": "250%"},
        "prometheus": {"url": "http://127.0.0.1:9090/", "query": "sum(rate(x[1m]))", "above": 5, "for": "1m"},
    })
    assert r.p50 is not None and r.p50.above == 0.3 and r.p50.for_ == 60.0  # `for` defaults to 1m
    assert r.p99 is not None and r.p99.for_ == 30.0
    assert r.request_rate is not None and r.request_rate.below == 2.0
    assert r.cpu is not None and r.cpu.above == 2.5
    assert len(r.prometheus) == 1 and r.prometheus[0].url == "http://127.0.0.1:9090"
    two = RollbackSpec.model_validate({"prometheus": [
        {"url": "http://a", "query": "q1", "below": 1}, {"url": "https://b", "query": "q2", "above": 2}]})
    assert [p.query for p in two.prometheus] == ["q1", "q2"]


@pytest.mark.parametrize(("data", "loc", "needle"), [
    ({"error_rate": {"above": "105%"}}, ("error_rate", "above"), "between 0% and 100%"),
    ({"error_rate": {"below": "5%"}}, ("error_rate", "below"), "Extra inputs"),
    ({"error_rate": {"above": "5%", "for": "soon"}}, ("error_rate", "for"), "expected a duration"),
    ({"p95": {"above": "0s"}}, ("p95", "above"), "positive duration"),
    ({"p95": {"above": "fast"}}, ("p95", "above"), "expected a duration"),
    ({"cpu": {"above": "lots"}}, ("cpu", "above"), "CPU percentage"),
    ({"cpu": {"above": "0%"}}, ("cpu", "above"), "above 0%"),
    ({"memory": {"above": "0%"}}, ("memory", "above"), "above 0%"),
    ({"request_rate": {"below": "many"}}, ("request_rate", "below"), "request rate"),
    ({"request_rate": {"below": -1}}, ("request_rate", "below"), "negative"),
    ({"health_failures": 0}, ("health_failures",), "greater than or equal to 1"),
    ({"p90": {"above": "1s"}}, ("p90",), "Extra inputs"),
    ({"prometheus": {"url": "ftp://x", "query": "up", "above": 1}}, ("prometheus", 0, "url"), "http://"),
    ({"prometheus": {"url": "http://x", "query": " ", "above": 1}}, ("prometheus", 0, "query"), "empty"),
    ({"prometheus": {"url": "http://x", "query": "up"}}, ("prometheus", 0), "exactly one of"),
    ({"prometheus": {"url": "http://x", "query": "up", "above": 1, "below": 0}}, ("prometheus", 0),
     "exactly one of"),
])
def test_bad_triggers_are_named(data: dict[str, Any], loc: tuple[Any, ...], needle: str) -> None:
    errs = errors_of(RollbackSpec, data)
    assert any(e_loc == loc and needle in msg for e_loc, msg in errs), errs


def test_models_are_frozen() -> None:
    r = RollbackSpec.model_validate(ISSUE_ROLLBACK)
    with pytest.raises(ValidationError):
        r.health_failures = 5
