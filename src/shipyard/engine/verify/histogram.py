"""A small HDR-style log-linear histogram of latencies in microseconds.

Values below 128 µs are exact; above, each power of two is split into 64 buckets, so a recorded value is
known within 1/64 (quantiles report the bucket midpoint: error under 0.8 %). Recording is a handful of
integer operations, cheap enough for the generator's hot path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

_SUB_BITS = 7
_SUB = 1 << _SUB_BITS  # 128
_HALF = _SUB >> 1  # 64


def bucket_index(value_us: int) -> int:
    if value_us < _SUB:
        return value_us if value_us > 0 else 0
    shift = value_us.bit_length() - _SUB_BITS
    return shift * _HALF + (value_us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """[low, high) in microseconds of the values held by bucket ``index``."""
    if index < _SUB:
        return index, index + 1
    shift = index // _HALF - 1
    mantissa = index % _HALF + _HALF
    return mantissa << shift, (mantissa + 1) << shift


class Histogram:
    __slots__ = ("counts", "total", "sum_us", "min_us", "max_us")

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.total = 0
        self.sum_us = 0
        self.min_us = 0
        self.max_us = 0

    def record(self, value_us: int) -> None:
        if value_us < 0:
            value_us = 0
        i = value_us if value_us < _SUB else (value_us.bit_length() - _SUB_BITS) * _HALF + (
            value_us >> (value_us.bit_length() - _SUB_BITS))
        counts = self.counts
        if i >= len(counts):
            counts.extend([0] * (i + 1 - len(counts) + 64))
        counts[i] += 1
        if self.total == 0 or value_us < self.min_us:
            self.min_us = value_us
        if value_us > self.max_us:
            self.max_us = value_us
        self.total += 1
        self.sum_us += value_us

    def merge(self, other: Histogram) -> None:
        if not other.total:
            return
        if len(other.counts) > len(self.counts):
            self.counts.extend([0] * (len(other.counts) - len(self.counts)))
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.min_us = other.min_us if self.total == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.total += other.total
        self.sum_us += other.sum_us

    def quantile_us(self, q: float) -> float:
        """Value at quantile ``q`` (0..1): the midpoint of the bucket holding it, clamped to min/max."""
        if self.total == 0:
            return math.nan
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                low, high = bucket_bounds(i)
                mid = low if high - low == 1 else (low + high) / 2
                return float(min(max(mid, self.min_us), self.max_us))
        return float(self.max_us)

    def mean_us(self) -> float:
        return self.sum_us / self.total if self.total else math.nan

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """Non-empty buckets as (low_us, high_us, count)."""
        for i, c in enumerate(self.counts):
            if c:
                low, high = bucket_bounds(i)
                yield low, high, c
