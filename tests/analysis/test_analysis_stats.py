"""The hand-written statistics against scipy (test-only dependency) on fixed samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shipyard.engine.analysis.stats import (
    fisher_exact_greater,
    mann_whitney_binned,
    normal_sf,
    proportion_test,
    two_proportion_z,
)


def test_normal_sf_matches_scipy_far_into_the_tail() -> None:
    for z in (-5.0, -1.0, 0.0, 0.5, 1.96, 3.09, 6.0, 9.0):
        assert normal_sf(z) == pytest.approx(float(stats.norm.sf(z)), rel=1e-9)


PROPORTIONS = [
    (5, 100, 1, 900),
    (50, 1000, 10, 9000),
    (3, 200, 2, 1800),
    (12, 400, 30, 1200),
    (0, 300, 4, 2700),  # canary better
    (30, 100, 300, 1000),  # equal rates
    (1, 50, 0, 5000),
]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), PROPORTIONS)
def test_two_proportion_z_matches_chi_square(x1: int, n1: int, x2: int, n2: int) -> None:
    got = two_proportion_z(x1, n1, x2, n2)
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    chi2, p_two, _, _ = stats.chi2_contingency(table, correction=False)
    assert got.z**2 == pytest.approx(chi2, rel=1e-9)
    # One-sided "first larger": half the two-sided p when the difference points that way.
    expected = p_two / 2 if x1 / n1 > x2 / n2 else 1 - p_two / 2
    assert got.p_value == pytest.approx(expected, rel=1e-7, abs=1e-15)


def test_two_proportion_without_failures_is_no_evidence() -> None:
    assert two_proportion_z(0, 100, 0, 900).p_value == 0.5
    assert two_proportion_z(100, 100, 900, 900).p_value == 0.5
    with pytest.raises(ValueError):
        two_proportion_z(1, 0, 0, 10)
    with pytest.raises(ValueError):
        two_proportion_z(11, 10, 0, 10)


def _expand(binned: dict[int, int]) -> list[int]:
    return [b for b, n in sorted(binned.items()) for _ in range(n)]


def _random_binned(rng: np.random.Generator, n: int, loc: float, bins: int) -> dict[int, int]:
    values = np.clip(np.round(rng.normal(loc, 6.0, n)), 0, bins)
    u, c = np.unique(values.astype(int), return_counts=True)
    return {int(a): int(b) for a, b in zip(u, c, strict=True)}


MWU_CASES = [
    ({1: 5, 2: 5, 3: 5}, {1: 5, 2: 5, 3: 5}),  # identical
    ({3: 10, 4: 10}, {1: 10, 2: 10, 3: 5}),  # first clearly larger
    ({1: 20}, {1: 5, 2: 15}),  # first smaller
    ({0: 1, 7: 3, 9: 2}, {0: 4, 2: 2, 9: 1}),  # small, heavy ties
    ({5: 300, 6: 40, 30: 10}, {5: 2500, 6: 400, 7: 100}),  # a slow tail
]


@pytest.mark.parametrize(("first", "second"), MWU_CASES)
def test_mann_whitney_binned_matches_scipy(first: dict[int, int], second: dict[int, int]) -> None:
    got = mann_whitney_binned(first, second)
    ref = stats.mannwhitneyu(_expand(first), _expand(second), alternative="greater",
                             use_continuity=True, method="asymptotic")
    assert got.u == pytest.approx(float(ref.statistic), rel=1e-12)
    assert got.p_value == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mann_whitney_binned_matches_scipy_on_random_histograms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    first = _random_binned(rng, 400, 52.0, 100)
    second = _random_binned(rng, 3000, 50.0, 100)
    got = mann_whitney_binned(first, second)
    ref = stats.mannwhitneyu(_expand(first), _expand(second), alternative="greater",
                             use_continuity=True, method="asymptotic")
    assert got.p_value == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-15)
    assert got.p_value < 0.01  # a 2-bin shift over 400 vs 3000 samples is significant


def test_mann_whitney_all_tied_is_no_evidence() -> None:
    assert mann_whitney_binned({3: 10}, {3: 20}).p_value == 0.5
    with pytest.raises(ValueError):
        mann_whitney_binned({}, {1: 2})


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [*PROPORTIONS, (5, 203, 9, 1838), (0, 10, 3, 10),
                                                     (4, 4, 0, 6), (2, 1000, 1, 100_000)])
def test_fisher_exact_greater_matches_scipy(x1: int, n1: int, x2: int, n2: int) -> None:
    ref = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
    assert fisher_exact_greater(x1, n1, x2, n2) == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-15)


def test_proportion_test_uses_exact_test_for_few_errors() -> None:
    # The simulated false alarm that made the exact fallback necessary: 5 canary errors when ~1.4
    # were expected. The z-test calls it p ≈ 0.0006; the exact test, correctly, ≈ 0.013.
    few = proportion_test(5, 203, 9, 1838)
    assert few.method == "exact test" and few.p_value > 0.005
    assert two_proportion_z(5, 203, 9, 1838).p_value < 0.001
    many = proportion_test(50, 1000, 10, 9000)
    assert many.method == "z-test"
    assert many.p_value == two_proportion_z(50, 1000, 10, 9000).p_value
    assert proportion_test(0, 100, 0, 900).p_value == 0.5  # no errors anywhere: no evidence
