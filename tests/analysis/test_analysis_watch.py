from __future__ import annotations

from analysis_helpers import sample

from shipyard.engine.analysis.conditions import Condition, evaluate_all, firing
from shipyard.engine.analysis.watch import decide_watch

ERR = Condition("error_rate", 0.05, "above", 30.0)


def test_watch_rolls_back_when_a_trigger_fires() -> None:
    # Healthy for 100 s after promotion, then the new release starts failing 20 % of requests.
    samples = [sample(t, "r2", instance="a", requests=50, errors=10 if t >= 100 else 0,
                      latencies=[0.02] * 50) for t in range(200)]
    first = None
    for now in range(1, 200):
        d = decide_watch(elapsed=now, watch=3600, firing=firing(evaluate_all([ERR], samples, now)))
        if d.action == "rollback":
            first = now
            assert "[r2] error_rate 20% above 5% for 30s" in d.reason
            assert d.firing[0].value == 0.2
            break
        assert d.action == "watching"
    # Points now−30 … now−1 each look at [p − 9, p]; a 10-s sub-window is above 5 % once 3 of its
    # seconds run at 20 %, so the oldest point holds from p = 102 on: it fires at 102 + 30.
    assert first == 132


def test_watch_ends() -> None:
    assert decide_watch(elapsed=3600, watch=3600, firing=[]).action == "done"
    assert decide_watch(elapsed=10, watch=3600, firing=[]).action == "watching"
