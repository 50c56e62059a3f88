"""The default judgement on simulated traffic (seeded): bad canaries fail within 10 s of samples at
1,000 rps, and 20 healthy canaries at 200 rps are all promoted. Figures: docs/analysis.md."""

from __future__ import annotations

import pytest
from canary_sim import detection_seconds, healthy_rollout


@pytest.mark.parametrize("kind", ["errors", "latency", "crashloop"])
def test_bad_canary_fails_within_ten_seconds_at_1000_rps(kind: str) -> None:
    secs = [detection_seconds(kind, seed) for seed in range(20)]
    assert None not in secs, secs
    assert max(s for s in secs if s is not None) <= 10, secs


@pytest.mark.parametrize("kind", ["errors", "latency", "crashloop"])
def test_bad_canary_fails_within_thirty_seconds_at_200_rps(kind: str) -> None:
    secs = [detection_seconds(kind, seed, total_rps=200) for seed in range(10)]
    assert None not in secs and max(s for s in secs if s is not None) <= 30, secs


def test_twenty_healthy_canaries_all_promoted() -> None:
    results = [healthy_rollout(seed) for seed in range(20)]
    assert [r.outcome for r in results] == ["promote"] * 20, [r for r in results if r.outcome != "promote"]
    # Three 20-second bakes at most a few seconds late each (min samples at 10 % of 200 rps).
    assert all(r.seconds <= 90 for r in results)


def test_simulation_can_fail_a_healthy_canary_with_reckless_settings() -> None:
    """The healthy test above can fail: without tolerances, peeking every second finds noise."""
    from shipyard.primitives.spec.rollout import CanarySpec

    reckless = CanarySpec(min_samples=10, confidence=0.9, error_tolerance=0.0,
                          error_tolerance_relative=0.0, latency_tolerance=0.0, latency_tolerance_min=0)
    outcomes = [healthy_rollout(seed, spec=reckless).outcome for seed in range(20)]
    assert outcomes.count("rollback") > 0
