"""The one latency histogram: log-linear buckets in seconds, sparse counts, one quantile function.

Each power-of-two octave of seconds is split into ``SUB_BUCKETS`` equal-width buckets, so every bucket is at
most 1/32 of its lower edge wide: a quantile reported as its bucket's midpoint is within 1/64 (1.6 %) of the
true sample value. Octave edges are powers of two, which puts bucket edges exactly at 0.5 s and 2 s (and 1 s,
0.25 s, ...). Values below ``MIN_VALUE`` count in bucket 0, values at or above ``MAX_VALUE`` in the last one.

Counts are sparse ``{bucket_index: count}`` mappings (``BucketCounts``): a second of traffic touches a few
dozen buckets. The router's hot path increments such a dict directly (``bucket_index`` and one dict update);
everything else — the verify recorder, the analysis, the router's windows — reads it through ``quantile``,
or through a ``Histogram``, which also keeps the exact minimum, maximum and sum of the values it recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from math import ceil, frexp, ldexp

SUB_BUCKETS = 32
_E_LO = -19  # frexp exponent of the lowest octave [2**-20, 2**-19): ~1 µs
_E_HI = 11  # one past the highest octave [2**9, 2**10): ~17 min
MIN_VALUE = ldexp(1.0, _E_LO - 1)
MAX_VALUE = ldexp(1.0, _E_HI - 1)
NUM_BUCKETS = (_E_HI - _E_LO) * SUB_BUCKETS
SCHEME = "loglinear-2^-20..2^10-x32"

BucketCounts = Mapping[int, int]


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


def merge_counts(many: Iterable[BucketCounts]) -> dict[int, int]:
    """The bucket-wise sum of several count mappings (empty buckets left out)."""
    out: dict[int, int] = {}
    for counts in many:
        for i, n in counts.items():
            if n:
                out[i] = out.get(i, 0) + n
    return out


def quantile(counts: BucketCounts, q: float) -> float | None:
    """The value at quantile ``q`` (0..1): the nearest-rank sample's bucket midpoint; None when empty.

    Nearest rank: the ``ceil(q·n)``-th smallest sample (at least the first), as
    ``numpy.quantile(values, q, method="inverted_cdf")`` picks it; the answer is within 1/64 of it.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be between 0 and 1, got {q}")
    total = sum(n for n in counts.values() if n > 0)
    if total == 0:
        return None
    rank = max(1, ceil(q * total))
    seen = 0
    for i in sorted(counts):
        n = counts[i]
        if n <= 0:
            continue
        seen += n
        if seen >= rank:
            return bucket_midpoint(i)
    raise AssertionError("unreachable: rank is within the total")


class Histogram:
    """Sparse bucket counts, plus the exact min, max and sum of recorded values; mutable, one writer.

    ``min``, ``max`` and ``mean`` are exact while every sample came through ``record`` (or ``merge`` of such
    histograms); once bare counts are added (``add_counts``, ``from_pairs``) they are unknown (None).
    ``quantile`` clamps its answer to the exact extremes when they are known.
    """

    __slots__ = ("counts", "total", "exact", "_sum", "_min", "_max")

    def __init__(self, counts: BucketCounts | None = None) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.exact = True
        self._sum = 0.0
        self._min = 0.0
        self._max = 0.0
        if counts:
            self.add_counts(counts)

    @classmethod
    def from_pairs(cls, pairs: Iterable[Iterable[int]]) -> Histogram:
        """From ``[[index, count], ...]`` as sent in the router's ``stats`` and ``slices`` replies."""
        counts: dict[int, int] = {}
        for idx, n in pairs:
            counts[int(idx)] = counts.get(int(idx), 0) + int(n)
        return cls(counts)

    def record(self, seconds: float) -> None:
        # bucket_index inlined: this runs up to three times per response on the load generator's hot path.
        if MIN_VALUE <= seconds < MAX_VALUE:
            m, e = frexp(seconds)
            i = (e - _E_LO) * SUB_BUCKETS + int((m - 0.5) * (2 * SUB_BUCKETS))
        else:
            i = 0 if seconds < MIN_VALUE else NUM_BUCKETS - 1
        counts = self.counts
        counts[i] = counts.get(i, 0) + 1
        if not self.total:
            self._min = self._max = seconds
        elif seconds < self._min:
            self._min = seconds
        elif seconds > self._max:
            self._max = seconds
        self.total += 1
        self._sum += seconds

    def add_counts(self, counts: BucketCounts) -> None:
        """Bare bucket counts (a router slice): from now on min, max and mean are unknown."""
        added = 0
        for i, n in counts.items():
            if n:
                self.counts[i] = self.counts.get(i, 0) + n
                added += n
        if added:
            self.total += added
            self.exact = False

    def merge(self, other: Histogram) -> None:
        if not other.total:
            return
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        if self.total == 0:
            self._min, self._max = other._min, other._max
        else:
            self._min, self._max = min(self._min, other._min), max(self._max, other._max)
        self.total += other.total
        self._sum += other._sum
        self.exact = self.exact and other.exact

    @property
    def min(self) -> float | None:
        return self._min if self.exact and self.total else None

    @property
    def max(self) -> float | None:
        return self._max if self.exact and self.total else None

    @property
    def mean(self) -> float | None:
        return self._sum / self.total if self.exact and self.total else None

    def quantile(self, q: float) -> float | None:
        """``quantile(self.counts, q)``, clamped to the recorded extremes when they are known."""
        v = quantile(self.counts, q)
        if v is None or not self.exact:
            return v
        return min(max(v, self._min), self._max)

    def pairs(self) -> list[list[int]]:
        """Non-empty buckets as ``[[index, count], ...]`` sorted by index (JSON-friendly)."""
        return [[i, self.counts[i]] for i in sorted(self.counts) if self.counts[i]]

    def buckets(self) -> Iterator[tuple[float, float, int]]:
        """Non-empty buckets as ``(lower, upper, count)``, seconds, fastest first."""
        for i in sorted(self.counts):
            if self.counts[i]:
                lo, hi = bucket_bounds(i)
                yield lo, hi, self.counts[i]
