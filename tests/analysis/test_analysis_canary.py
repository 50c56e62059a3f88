from __future__ import annotations

from analysis_helpers import sample

from shipyard.engine.analysis.conditions import Condition, Evaluation, evaluate
from shipyard.engine.analysis.judgement import Verdict, judge
from shipyard.engine.analysis.measurements import Window
from shipyard.engine.rollout.canary import CanaryStep, decide, expand, plan_lines
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec


def verdict(outcome: str) -> Verdict:
    """A real verdict of the wanted outcome from fixed traffic."""
    if outcome == "inconclusive":
        c, s = [sample(0, "c", requests=5)], [sample(0, "s", requests=5)]
    else:
        bad = outcome == "fail"
        c = [sample(0, "c", requests=1000, errors=100 if bad else 0, latencies=[0.02] * 1000)]
        s = [sample(0, "s", requests=1000, latencies=[0.02] * 1000)]
    v = judge(Window.of(c, 0, 1), Window.of(s, 0, 1))
    assert v.outcome == outcome
    return v


def test_short_form_expansion() -> None:
    steps = expand(CanarySpec.model_validate({"steps": [10, 50, 100], "step_duration": "20s"}))
    assert [(s.kind, s.weight, s.duration) for s in steps] == [
        ("weight", 10, None), ("bake", 10, 20.0),
        ("weight", 50, None), ("bake", 50, 20.0),
        ("weight", 100, None),
        ("promote", 100, None),
    ]
    assert [s.index for s in steps] == list(range(6))
    assert steps[0].description == "route 10% canary / 90% stable"
    assert steps[1].description.startswith("bake 20s at 10%: judge canary vs stable")
    assert "becomes stable" in steps[-1].description
    assert steps[1].judged and not steps[0].judged


def test_short_form_without_100_still_promotes() -> None:
    steps = expand(CanarySpec.model_validate({"steps": [25]}))
    assert [(s.kind, s.weight) for s in steps] == [("weight", 25), ("bake", 25), ("promote", 100)]


def test_full_form_expansion() -> None:
    spec = CanarySpec.model_validate({
        "step_duration": "15s",
        "steps": [{"pause": {}}, {"weight": 10}, {"pause": "1m"}, {"analysis": "smoke"},
                  {"analysis": "canary"}, {"pause": {}}, {"weight": 100}],
        "analysis": {"smoke": {"duration": "30s", "p99": {"above": "500ms", "for": "10s"}}},
    })
    steps = expand(spec)
    assert [(s.kind, s.weight, s.duration, s.analysis) for s in steps] == [
        ("gate", 0, None, None),
        ("weight", 10, None, None),
        ("bake", 10, 60.0, None),
        ("analysis", 10, 30.0, "smoke"),
        ("analysis", 10, 15.0, "canary"),
        ("gate", 10, None, None),
        ("weight", 100, None, None),
        ("promote", 100, None, None),
    ]
    smoke = steps[3]
    assert [c.kind for c in smoke.conditions] == ["p99"]
    assert "p99 above 500ms for 10s" in smoke.description
    assert "shipyard promote" in steps[0].description
    assert steps[3].to_json()["conditions"] == ["p99 above 500ms for 10s"]


BAKE = CanaryStep(1, "bake", 10, "bake 20s at 10%", duration=20.0)
GATE = CanaryStep(2, "gate", 10, "manual gate")
WEIGHT = CanaryStep(0, "weight", 10, "route 10%")
PROMOTE = CanaryStep(3, "promote", 100, "promote")


def firing_error_rate() -> list[Evaluation]:
    c = Condition("error_rate", 0.05, "above", 5.0)
    e = evaluate(c, [sample(t, "c", requests=10, errors=5) for t in range(20)], 20, release="c")
    assert e.firing
    return [e]


def test_bake_waits_then_continues_on_pass() -> None:
    assert decide(BAKE, elapsed=5, verdict=verdict("pass")).action == "wait"
    assert decide(BAKE, elapsed=5, verdict=None).action == "wait"
    d = decide(BAKE, elapsed=20, verdict=verdict("pass"))
    assert d.action == "continue" and "passed" in d.reason


def test_fail_rolls_back_at_once_in_any_step() -> None:
    for step in (BAKE, GATE, WEIGHT, PROMOTE):
        d = decide(step, elapsed=1, verdict=verdict("fail"))
        assert d.action == "rollback", step
        assert "error rate canary" in d.reason and d.verdict is not None
    # Also while paused and while the operator promotes.
    assert decide(BAKE, elapsed=1, verdict=verdict("fail"), paused=True).action == "rollback"
    assert decide(GATE, elapsed=1, verdict=verdict("fail"), command="promote").action == "rollback"


def test_trigger_rolls_back_with_its_reason() -> None:
    d = decide(BAKE, elapsed=3, verdict=verdict("pass"), firing=firing_error_rate())
    assert d.action == "rollback"
    assert d.reason.startswith("rollback trigger fired: [c] error_rate 50% above 5%")
    assert len(d.firing) == 1 and d.firing[0].to_json()["firing"] is True


def test_inconclusive_waits_then_pauses_for_human() -> None:
    inc = verdict("inconclusive")
    d = decide(BAKE, elapsed=25, verdict=inc, inconclusive_limit=60)
    assert d.action == "wait" and "waiting for more traffic" in d.reason
    d = decide(BAKE, elapsed=80, verdict=inc, inconclusive_limit=60)
    assert d.action == "pause"
    assert "pausing for a human" in d.reason and "canary 5 requests, stable 5" in d.reason
    # Never a silent pass: no verdict at all behaves the same.
    assert decide(BAKE, elapsed=80, verdict=None, inconclusive_limit=60).action == "pause"


def test_gate_waits_for_promote() -> None:
    d = decide(GATE, elapsed=3600, verdict=verdict("pass"))
    assert d.action == "wait" and "shipyard promote" in d.reason
    assert decide(GATE, elapsed=1, verdict=None, command="promote").action == "continue"


def test_operator_commands() -> None:
    assert decide(BAKE, elapsed=1, verdict=verdict("pass"), command="abort").action == "rollback"
    d = decide(BAKE, elapsed=1, verdict=verdict("inconclusive"), command="promote_full")
    assert d.action == "promote" and "skipped" in d.reason
    assert decide(BAKE, elapsed=1, verdict=None, command="promote").action == "continue"
    # Paused by the operator: stays put even once the bake has passed.
    d = decide(BAKE, elapsed=30, verdict=verdict("pass"), paused=True)
    assert d.action == "wait" and "paused" in d.reason
    assert decide(BAKE, elapsed=500, verdict=verdict("inconclusive"), paused=True).action == "wait"


def test_weight_and_promote_steps() -> None:
    assert decide(WEIGHT, elapsed=0, verdict=None).action == "continue"
    assert decide(PROMOTE, elapsed=0, verdict=verdict("pass")).action == "promote"


def test_plan_lines_show_steps_and_every_trigger() -> None:
    canary = CanarySpec.model_validate({"steps": [10, 50, 100], "step_duration": "20s"})
    rollback = RollbackSpec.model_validate({
        "error_rate": {"above": "5%", "for": "5m"},
        "p95": {"above": "2s", "for": "3m"},
        "cpu": {"above": "90%", "for": "5m"},
        "memory": {"above": "95%", "for": "3m"},
        "health_failures": 3,
    })
    text = "\n".join(plan_lines(canary, rollback))
    for needle in ("1. route 10% canary / 90% stable", "2. bake 20s at 10%", "6. promote",
                   "error_rate above 5% for 5m", "p95 above 2s for 3m", "cpu above 90%",
                   "memory above 95%", "3 consecutive failed health checks", "99.99% confidence",
                   "pause for a human"):
        assert needle in text, needle
    assert "none" in "\n".join(plan_lines(canary, None))
