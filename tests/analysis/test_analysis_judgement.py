from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import Traffic, sample

from shipyard.engine.analysis.judgement import (
    JudgementSettings,
    check_errors,
    describe_settings,
    judge,
    judge_samples,
)
from shipyard.engine.analysis.measurements import Sample, Window
from shipyard.primitives.spec.rollout import CanarySpec


def traffic(seed: int, seconds: int, *, canary_err: float = 0.001, stable_err: float = 0.001,
            shift: float = 0.0, canary_rps: int = 100, stable_rps: int = 900) -> list[Sample]:
    rng = np.random.default_rng(seed)
    c = Traffic(rng, "canary", canary_rps, canary_err, shift=shift)
    s = Traffic(rng, "stable", stable_rps, stable_err)
    return [x for t in range(seconds) for x in (c.second(t), s.second(t))]


def test_bad_canary_errors_fail_with_numbers() -> None:
    v = judge_samples(traffic(1, 10, canary_err=0.05), "canary", "stable", 0, 10)
    assert v.outcome == "fail"
    errors = v.checks[0]
    assert errors.name == "errors" and errors.outcome == "fail"
    assert errors.canary_value is not None and errors.canary_value > 0.03
    assert errors.p_value is not None and errors.p_value < 0.001
    assert "canary" in v.reason and "stable" in v.reason and "tolerance" in v.reason
    assert v.to_json()["outcome"] == "fail"


def test_slow_canary_fails_on_latency() -> None:
    v = judge_samples(traffic(2, 10, shift=0.300), "canary", "stable", 0, 10)
    assert v.outcome == "fail"
    lat = v.checks[1]
    assert lat.name == "latency" and lat.outcome == "fail"
    assert lat.difference is not None and 0.25 < lat.difference < 0.35
    assert v.checks[0].outcome == "pass"


def test_good_canary_passes() -> None:
    v = judge_samples(traffic(3, 20), "canary", "stable", 0, 20)
    assert v.outcome == "pass", v.reason
    assert all(c.outcome == "pass" for c in v.checks)


def test_low_traffic_is_inconclusive_with_counts_never_pass() -> None:
    samples = traffic(4, 10, canary_rps=5, stable_rps=45)
    v = judge_samples(samples, "canary", "stable", 0, 10)
    assert v.outcome == "inconclusive"
    c = v.checks[0]
    assert c.canary_n < 100 <= c.stable_n
    assert f"canary {c.canary_n} requests, stable {c.stable_n}" in v.reason
    assert "need 100 each" in v.reason


def test_no_canary_traffic_at_all_is_inconclusive() -> None:
    samples = [x for x in traffic(5, 10) if x.release == "stable"]
    v = judge_samples(samples, "canary", "stable", 0, 10)
    assert v.outcome == "inconclusive"
    assert "canary 0 requests" in v.reason


def test_fail_wins_over_inconclusive() -> None:
    # Every canary request fails fast: errors judged, latency below min samples → still a fail.
    c = [sample(t, "canary", requests=100, errors=100) for t in range(5)]
    s = [sample(t, "stable", requests=900, latencies=[0.02] * 900) for t in range(5)]
    v = judge(Window.of(c, 0, 5), Window.of(s, 0, 5))
    assert v.outcome == "fail"
    assert [x.outcome for x in v.checks] == ["fail", "inconclusive"]


def test_error_tolerance_absolute_and_relative() -> None:
    s = JudgementSettings()
    stable = Window.of([sample(0, "s", requests=100_000, errors=0)], 0, 1)
    # Highly significant but only +0.8 points: within the 1-point tolerance.
    assert check_errors(Window.of([sample(0, "c", requests=10_000, errors=80)], 0, 1), stable, s).outcome == "pass"
    assert check_errors(Window.of([sample(0, "c", requests=10_000, errors=120)], 0, 1), stable, s).outcome == "fail"
    # Stable at 10 %: the relative tolerance (50 % of 10 % = 5 points) applies.
    stable10 = Window.of([sample(0, "s", requests=100_000, errors=10_000)], 0, 1)
    c14 = Window.of([sample(0, "c", requests=10_000, errors=1400)], 0, 1)
    chk = check_errors(c14, stable10, s)
    assert chk.outcome == "pass" and chk.tolerance == pytest.approx(0.05)
    c16 = Window.of([sample(0, "c", requests=10_000, errors=1600)], 0, 1)
    assert check_errors(c16, stable10, s).outcome == "fail"


def test_difference_beyond_tolerance_but_not_significant_passes() -> None:
    s = JudgementSettings(min_samples=10)
    stable = Window.of([sample(0, "s", requests=20, errors=0)], 0, 1)
    canary = Window.of([sample(0, "c", requests=20, errors=1)], 0, 1)  # +5 points, p ≈ 0.16
    assert check_errors(canary, stable, s).outcome == "pass"


def test_latency_tolerance_floor_for_fast_services() -> None:
    # 1 ms vs 2 ms medians: hugely significant, +100 %, but under the 10 ms floor.
    c = Window.of([sample(0, "c", requests=1000, latencies=[0.002] * 1000)], 0, 1)
    s = Window.of([sample(0, "s", requests=1000, latencies=[0.001] * 1000)], 0, 1)
    v = judge(c, s)
    assert v.checks[1].outcome == "pass"
    strict = JudgementSettings(latency_tolerance_min=0.0005)
    assert judge(c, s, settings=strict).checks[1].outcome == "fail"


def test_settings_from_spec() -> None:
    spec = CanarySpec.model_validate({"min_samples": 50, "confidence": "99%", "error_tolerance": "2%",
                                      "latency_tolerance": "10%", "latency_tolerance_min": "5ms"})
    s = JudgementSettings.from_spec(spec)
    assert (s.min_samples, s.error_tolerance, s.latency_tolerance, s.latency_tolerance_min) == (
        50, 0.02, 0.1, 0.005)
    assert s.alpha == pytest.approx(0.01)
    assert JudgementSettings.from_spec(None) == JudgementSettings()
    assert "99.99% confidence" in describe_settings(JudgementSettings())


def test_judge_samples_rolls_up_instances_and_uses_same_window() -> None:
    c = [sample(t, "canary", instance=i, requests=150, errors=15, latencies=[0.02] * 150)
         for t in range(10) for i in ("a", "b")]
    s = [sample(t, "stable", instance="x", requests=900, latencies=[0.02] * 900) for t in range(20)]
    v = judge_samples(c + s, "canary", "stable", 0, 10)
    assert v.checks[0].canary_n == 3000 and v.checks[0].stable_n == 9000
    assert (v.start, v.end, v.canary, v.stable) == (0, 10, "canary", "stable")
    assert v.outcome == "fail"
