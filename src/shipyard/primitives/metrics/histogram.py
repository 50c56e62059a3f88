"""Log-linear latency histogram.

Each power-of-two octave of seconds is split into ``SUB_BUCKETS`` equal-width buckets, so every bucket is at
most 1/32 of its lower edge wide: a quantile reported as its bucket's midpoint is within 1.6 % of the true
sample value. Octave edges are powers of two, which puts bucket edges exactly at 0.5 s and 2 s (and 1 s,
0.25 s, ...). Values below ``MIN_VALUE`` count in bucket 0, values at or above ``MAX_VALUE`` in the last one.

Counts are sparse ``{bucket_index: count}`` dicts: a second of traffic touches a few dozen buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import ceil, frexp, ldexp

SUB_BUCKETS = 32
_E_LO = -19  # frexp exponent of the lowest octave [2**-20, 2**-19): ~1 µs
_E_HI = 11  # one past the highest octave [2**9, 2**10): ~17 min
MIN_VALUE = ldexp(1.0, _E_LO - 1)
MAX_VALUE = ldexp(1.0, _E_HI - 1)
NUM_BUCKETS = (_E_HI - _E_LO) * SUB_BUCKETS
SCHEME = "loglinear-2^-20..2^10-x32"


def bucket_index(seconds: float) -> int:
    """The bucket a latency in seconds falls into (lower edge inclusive)."""
    if seconds < MIN_VALUE:
        return 0
    if seconds >= MAX_VALUE:
        return NUM_BUCKETS - 1
    m, e = frexp(seconds)  # seconds = m * 2**e with 0.5 <= m < 1
    return (e - _E_LO) * SUB_BUCKETS + int((m - 0.5) * (2 * SUB_BUCKETS))


def bucket_bounds(index: int) -> tuple[float, float]:
    """``(lower, upper)`` edges in seconds of bucket ``index``; lower inclusive, upper exclusive."""
    if not 0 <= index < NUM_BUCKETS:
        raise ValueError(f"bucket index must be in 0..{NUM_BUCKETS - 1}, got {index}")
    octave, sub = divmod(index, SUB_BUCKETS)
    e = octave + _E_LO - 1
    return ldexp(1.0 + sub / SUB_BUCKETS, e), ldexp(1.0 + (sub + 1) / SUB_BUCKETS, e)


def bucket_midpoint(index: int) -> float:
    lo, hi = bucket_bounds(index)
    return (lo + hi) / 2.0


class Histogram:
    """Sparse bucket counts with quantiles; mutable, owned by one writer."""

    __slots__ = ("counts", "total")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts) if counts else {}
        self.total = sum(self.counts.values())

    @classmethod
    def from_pairs(cls, pairs: Iterable[Iterable[int]]) -> Histogram:
        """From ``[[index, count], ...]`` as sent in the router's ``stats`` reply."""
        h = cls()
        for idx, n in pairs:
            h.counts[int(idx)] = h.counts.get(int(idx), 0) + int(n)
            h.total += int(n)
        return h

    def record(self, seconds: float) -> None:
        i = bucket_index(seconds)
        self.counts[i] = self.counts.get(i, 0) + 1
        self.total += 1

    def merge(self, counts: Mapping[int, int]) -> None:
        for i, n in counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
            self.total += n

    def pairs(self) -> list[list[int]]:
        """Non-empty buckets as ``[[index, count], ...]`` sorted by index (JSON-friendly)."""
        return [[i, self.counts[i]] for i in sorted(self.counts)]

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1) as its bucket's midpoint; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        if self.total == 0:
            return None
        # Rank of the sample (nearest-rank method): the ceil(q * n)-th smallest, at least the first.
        rank = max(1, ceil(q * self.total))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return bucket_midpoint(i)
        return bucket_midpoint(max(self.counts))  # pragma: no cover - rank <= total always hits
