from __future__ import annotations

from collections.abc import Callable

import pytest
from analysis_helpers import sample, steady

from shipyard.engine.analysis.conditions import (
    RESOLUTION,
    Condition,
    Reading,
    conditions_from_spec,
    evaluate,
    evaluate_all,
    evaluate_prometheus,
    firing,
)
from shipyard.engine.analysis.measurements import Sample
from shipyard.primitives.metrics import bucket_bounds
from shipyard.primitives.spec.rollout import RollbackSpec

ERR = Condition("error_rate", 0.05, "above", 60.0)  # above 5% for 1m


def errors_at(rate_fn: Callable[[int], float], start: int, end: int, rps: int = 100) -> list[Sample]:
    return [sample(t, requests=rps, errors=round(rps * rate_fn(t)), latencies=[0.01] * rps)
            for t in range(start, end)]


# --- `for` semantics -----------------------------------------------------------------------------------

def test_fires_when_held_over_whole_window() -> None:
    s = errors_at(lambda t: 0.10, 0, 100)
    e = evaluate(ERR, s, 100, release="r1")
    assert e.firing and e.held_s == 60
    assert (e.start, e.end) == (40, 100)
    assert e.value == pytest.approx(0.10)
    assert "10%" in e.reason and "5%" in e.reason


def test_partial_window_does_not_fire() -> None:
    # Data began 50 s ago: the oldest points of a 60-s window have no data.
    s = errors_at(lambda t: 0.10, 50, 100)
    e = evaluate(ERR, s, 100)
    assert not e.firing and e.held_s == 50
    # Exactly enough: data since end − for − R + 1 … the first point's sub-window has a sample.
    s = errors_at(lambda t: 0.10, 40, 100)
    assert evaluate(ERR, s, 100).firing


def test_one_good_stretch_resets() -> None:
    # 10-s sub-windows: a 10-second clean stretch in the middle makes one point ≤ 5%.
    s = errors_at(lambda t: 0.0 if 60 <= t < 70 else 0.10, 0, 100)
    e = evaluate(ERR, s, 100)
    # Point p looks at [p-9, p]: 75 sees 4 clean + 6 bad seconds (6 %), 74 sees 5 + 5 (5 %, not above).
    assert not e.firing and e.held_s == 25
    # A shorter clean stretch is smoothed by the sub-window and still fires.
    s = errors_at(lambda t: 0.0 if 60 <= t < 63 else 0.10, 0, 100)
    assert evaluate(ERR, s, 100).firing


def test_gap_of_resolution_stops_firing_shorter_gap_does_not() -> None:
    full = errors_at(lambda t: 0.10, 0, 100)
    gap_long = [x for x in full if not 60 <= x.t < 60 + RESOLUTION]
    assert not evaluate(ERR, gap_long, 100).firing
    gap_short = [x for x in full if not 60 <= x.t < 60 + RESOLUTION - 1]
    assert evaluate(ERR, gap_short, 100).firing


def test_zero_requests_is_no_data_for_error_rate() -> None:
    s = errors_at(lambda t: 0.10, 0, 100)
    s = [Sample(x.t, x.release) if 60 <= x.t < 75 else x for x in s]  # 15 s of samples, no requests
    assert not evaluate(ERR, s, 100).firing


def test_exactly_at_threshold_does_not_fire() -> None:
    s = errors_at(lambda t: 0.05, 0, 100)
    assert not evaluate(ERR, s, 100).firing
    s = errors_at(lambda t: 0.06, 0, 100)
    assert evaluate(ERR, s, 100).firing


def test_samples_after_end_are_ignored_and_end_is_exclusive() -> None:
    s = errors_at(lambda t: 0.10 if t < 100 else 0.0, 0, 200)
    assert evaluate(ERR, s, 100).firing
    # Clean from second 100: at end=104 point 103 looks at [94, 103], 6 bad seconds of 10 (6 %);
    # at end=105 point 104 sees 5 of 10 (5 %, not above).
    assert evaluate(ERR, s, 104).firing
    assert not evaluate(ERR, s, 105).firing


def test_short_for_uses_short_resolution() -> None:
    c = Condition("error_rate", 0.5, "above", 3.0)
    assert (c.points, c.resolution) == (3, 3)
    # Points 97, 98, 99; point 97 looks at [95, 97], so errors must start by 96 (2 of 3 > 50 %).
    s = errors_at(lambda t: 1.0 if t >= 96 else 0.0, 0, 100)
    assert evaluate(c, s, 100).firing
    s = errors_at(lambda t: 1.0 if t >= 97 else 0.0, 0, 100)
    assert not evaluate(c, s, 100).firing
    zero = Condition("error_rate", 0.5, "above", 0.0)
    assert (zero.points, zero.resolution) == (1, 1)
    assert evaluate(zero, s, 100).firing


# --- each kind -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "slow", "fast", "threshold"), [
    ("p50", 0.30, 0.05, 0.2),
    ("p95", 2.5, 0.05, 2.0),
    ("p99", 1.2, 0.05, 1.0),
])
def test_latency_quantiles(kind: str, slow: float, fast: float, threshold: float) -> None:
    c = Condition(kind, threshold, "above", 30.0)  # type: ignore[arg-type]
    bad = steady("r1", 0, 60, rps=20, latency=slow)
    good = steady("r1", 0, 60, rps=20, latency=fast)
    e = evaluate(c, bad, 60)
    assert e.firing and e.value is not None and e.value > threshold
    assert not evaluate(c, good, 60).firing


def test_p95_sees_the_tail_p50_does_not() -> None:
    # 10 % of requests at 3 s, the rest at 50 ms.
    s = [sample(t, requests=20, latencies=[3.0] * 2 + [0.05] * 18) for t in range(60)]
    assert evaluate(Condition("p95", 2.0, "above", 30.0), s, 60).firing
    assert not evaluate(Condition("p50", 2.0, "above", 30.0), s, 60).firing


def test_latency_reads_the_one_bucket_layout() -> None:
    slow = steady("r", 0, 10, latency=2.0)
    cond = Condition("p95", 1.0, "above", 5.0)
    # control/ still passes the router's bucket_bounds positionally: the same layout, the same answer.
    assert evaluate(cond, slow, 10, bucket_bounds).firing and evaluate(cond, slow, 10).firing
    with pytest.raises(ValueError, match="bucket layout"):
        evaluate(cond, slow, 10, lambda i: (float(i), float(i + 1)))


def test_request_rate_below_counts_empty_seconds_as_data() -> None:
    c = Condition("request_rate", 5.0, "below", 30.0)
    idle = [Sample(t, "r1", requests=0) for t in range(60)]
    e = evaluate(c, idle, 60)
    assert e.firing and e.value == 0.0
    assert not evaluate(c, steady("r1", 0, 60, rps=10), 60).firing
    assert not evaluate(c, [], 60).firing  # no samples at all is no data, not "0 rps"
    at = steady("r1", 0, 60, rps=5)
    assert not evaluate(c, at, 60).firing  # exactly at threshold


def test_cpu_per_instance_mean_over_subwindow() -> None:
    c = Condition("cpu", 0.9, "above", 20.0)
    hot = [Sample(t, "r1", "i1", cpu=0.95) for t in range(40)]
    assert evaluate(c, hot, 40).firing
    # The supervisor reading every 2 s is enough (gaps < R are bridged).
    sparse = [Sample(t, "r1", "i1", cpu=0.95) for t in range(0, 40, 2)]
    assert evaluate(c, sparse, 40).firing
    cool = [Sample(t, "r1", "i1", cpu=0.95 if t % 10 else 0.1) for t in range(40)]
    # Mean of 10 s with one 0.1 reading: (9×0.95 + 0.1)/10 = 0.865 ≤ 0.9.
    assert not evaluate(c, cool, 40).firing
    assert "of a core" in c.describe()


def test_memory_share_of_limit() -> None:
    c = Condition("memory", 0.95, "above", 10.0)
    full = [Sample(t, "r1", "i1", rss=970, memory_limit=1000) for t in range(30)]
    e = evaluate(c, full, 30)
    assert e.firing and e.value == pytest.approx(0.97)
    fine = [Sample(t, "r1", "i1", rss=950, memory_limit=1000) for t in range(30)]
    assert not evaluate(c, fine, 30).firing  # exactly 95 %
    unknown = [Sample(t, "r1", "i1", rss=970) for t in range(30)]
    assert not evaluate(c, unknown, 30).firing  # no limit known: no data


def test_health_failures_latest_reading() -> None:
    c = Condition("health_failures", 3.0, "at_least")
    s = [Sample(t, "r1", "i1", health_failures=h) for t, h in [(0, 1), (1, 2), (2, 3)]]
    e = evaluate(c, s, 3)
    assert e.firing and e.value == 3.0
    assert not evaluate(c, s[:2], 3).firing
    recovered = [*s, Sample(3, "r1", "i1", health_failures=0)]
    assert not evaluate(c, recovered, 4).firing
    stale = evaluate(c, s, 3 + 60)
    assert not stale.firing and stale.value is None  # a reading older than R is not "now"


def test_evaluate_all_scopes() -> None:
    spec = RollbackSpec.model_validate({
        "error_rate": {"above": "5%", "for": "30s"},
        "cpu": {"above": "90%", "for": "10s"},
        "health_failures": 3,
    })
    conds = conditions_from_spec(spec)
    samples: list[Sample] = []
    for t in range(60):
        # Two instances of the canary: one all errors (10 % of the release's traffic), one hot CPU.
        samples.append(sample(t, "canary", instance="a", requests=10, errors=10, latencies=[0.01] * 10,
                              cpu=0.2, health_failures=0))
        samples.append(sample(t, "canary", instance="b", requests=90, latencies=[0.01] * 90, cpu=0.95,
                              health_failures=0))
        samples.append(sample(t, "stable", instance="s", requests=100, latencies=[0.01] * 100, cpu=0.1))
    evs = evaluate_all(conds, samples, 60)
    hot = {(e.condition.kind, e.release, e.instance) for e in firing(evs)}
    assert hot == {("error_rate", "canary", None), ("cpu", "canary", "b")}
    only_stable = evaluate_all(conds, samples, 60, releases=["stable"])
    assert not firing(only_stable)
    assert {e.release for e in only_stable} == {"stable"}
    assert only_stable[0].to_json()["condition"] == "error_rate"


def test_conditions_from_spec_and_describe() -> None:
    spec = RollbackSpec.model_validate({
        "error_rate": {"above": "5%", "for": "5m"},
        "p95": {"above": "2s", "for": "3m"},
        "p99": {"above": "800ms", "for": "1m"},
        "request_rate": {"below": 1, "for": "2m"},
        "cpu": {"above": "90%", "for": "5m"},
        "memory": {"above": "95%", "for": "3m"},
        "health_failures": 3,
        "prometheus": {"url": "http://p:9090", "query": "up", "below": 1, "for": "1m"},
    })
    lines = [c.describe() for c in conditions_from_spec(spec)]
    assert lines[0] == "error_rate above 5% for 5m"
    assert lines[1] == "p95 above 2s for 3m"
    assert lines[2] == "p99 above 800ms for 60s"
    assert lines[3] == "request_rate below 1 req/s for 2m"
    assert lines[4].startswith("cpu above 90%")
    assert lines[5].startswith("memory above 95%")
    assert "3 consecutive failed health checks" in lines[6]
    assert lines[7] == "prometheus 'up' at http://p:9090 below 1 for 60s"
    assert conditions_from_spec(None) == ()


def test_prometheus_condition_is_rejected_by_sample_evaluate() -> None:
    with pytest.raises(ValueError):
        evaluate(Condition("prometheus", 1, "above", 60, "http://x", "up"), [], 10)


# --- PromQL readings -----------------------------------------------------------------------------------

PROM = Condition("prometheus", 0.5, "above", 60.0, "http://p", "errors")


def test_prometheus_fires_when_every_reading_beyond_and_covered() -> None:
    readings = [Reading(t, 0.9) for t in range(1000, 1061, 10)]
    e = evaluate_prometheus(PROM, readings, 1061.0)
    assert e.firing and e.value == 0.9 and e.held_s == 60.0


def test_prometheus_one_low_reading_or_no_data_does_not_fire() -> None:
    readings = [Reading(t, 0.9) for t in range(1000, 1061, 10)]
    low = [*readings[:3], Reading(1030, 0.5), *readings[4:]]  # exactly at threshold
    assert not evaluate_prometheus(PROM, low, 1061.0).firing
    empty = [*readings[:3], Reading(1030, None), *readings[4:]]
    assert not evaluate_prometheus(PROM, empty, 1061.0).firing
    assert not evaluate_prometheus(PROM, [], 1061.0).firing


def test_prometheus_gaps() -> None:
    readings = [Reading(t, 0.9) for t in (1001, 1030, 1059)]
    assert evaluate_prometheus(PROM, readings, 1061.0, max_gap=30).firing
    e = evaluate_prometheus(PROM, readings, 1061.0, max_gap=20)
    assert not e.firing and "do not cover" in e.reason
    late_start = [Reading(t, 0.9) for t in (1040, 1050, 1060)]
    assert not evaluate_prometheus(PROM, late_start, 1061.0, max_gap=30).firing


def test_prometheus_below() -> None:
    c = Condition("prometheus", 1.0, "below", 20.0, "http://p", "up")
    assert evaluate_prometheus(c, [Reading(t, 0.0) for t in range(0, 21, 5)], 21).firing
    assert not evaluate_prometheus(c, [Reading(t, 1.0) for t in range(0, 21, 5)], 21).firing
