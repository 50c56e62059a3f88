"""The two tests of the canary judgement, written out (the product does not depend on scipy).

Both use the normal approximation, which is sound at the sample sizes the judgement insists on
(``min_samples``); tests compare them with scipy on fixed samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal; erfc keeps precision far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float  # one-sided: H1 "the first proportion is larger"


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> ZTest:
    """One-sided pooled two-proportion z-test of H1: x1/n1 > x2/n2.

    Equals the square root of Pearson's chi-square (no continuity correction) on the 2×2 table, with
    the sign of the difference. When neither side has a failure (or both only failures) there is no
    evidence either way: z = 0, p = 0.5.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError("counts must be between 0 and the sample size")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return ZTest(0.0, 0.5)
    z = (p1 - p2) / math.sqrt(var)
    return ZTest(z, normal_sf(z))


def fisher_exact_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided Fisher exact test of H1: x1/n1 > x2/n2 — P(X ≥ x1) for X hypergeometric with the
    table's margins (as ``scipy.stats.fisher_exact(table, alternative="greater")``)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError("counts must be between 0 and the sample size")
    k = x1 + x2
    total = n1 + n2

    def log_choose(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    base = log_choose(total, k)
    p = 0.0
    for x in range(x1, min(k, n1) + 1):
        p += math.exp(log_choose(n1, x) + log_choose(n2, k - x) - base)
    return min(1.0, p)


@dataclass(frozen=True)
class ProportionTest:
    method: str  # "z-test" | "exact test"
    p_value: float


# Below this expected count in any cell of the 2×2 table the normal approximation is too optimistic
# (a few errors on a canary would look like strong evidence), so the exact test decides.
MIN_EXPECTED = 5.0


def proportion_test(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """One-sided "first proportion larger": the pooled z-test, or Fisher's exact test when an expected
    cell count is under ``MIN_EXPECTED`` (the textbook condition for the z-test)."""
    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n * q for n in (n1, n2) for q in (pooled, 1.0 - pooled))
    if expected < MIN_EXPECTED and 0 < x1 + x2 < n1 + n2:
        return ProportionTest("exact test", fisher_exact_greater(x1, n1, x2, n2))
    return ProportionTest("z-test", two_proportion_z(x1, n1, x2, n2).p_value)


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample (the number of pairs where it is larger; ties count ½)
    z: float
    p_value: float  # one-sided: H1 "the first sample tends to be larger"
    n1: int
    n2: int


def mann_whitney_binned(first: Mapping[int, int], second: Mapping[int, int]) -> MannWhitney:
    """One-sided Mann–Whitney U test of H1: ``first`` is stochastically larger than ``second``.

    The samples are binned counts ``{bin: count}`` over ordered bins (histogram buckets): values in one
    bin are ties. Normal approximation with the tie-corrected variance and a continuity correction of
    ½ — the same as ``scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")``.
    """
    n1 = sum(first.values())
    n2 = sum(second.values())
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    n = n1 + n2
    u = 0.0
    below2 = 0  # observations of `second` in lower bins
    ties = 0.0
    for b in sorted(set(first) | set(second)):
        c1, c2 = first.get(b, 0), second.get(b, 0)
        u += c1 * (below2 + 0.5 * c2)
        below2 += c2
        t = c1 + c2
        ties += t * t * t - t
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0.0:
        # Everything tied: no evidence either way.
        return MannWhitney(u, 0.0, 0.5, n1, n2)
    z = (u - mean - 0.5) / math.sqrt(var)
    return MannWhitney(u, z, normal_sf(z), n1, n2)
