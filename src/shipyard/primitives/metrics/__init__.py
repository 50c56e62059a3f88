"""Router measurements: the one log-linear latency histogram, 1-second slices, windows, Prometheus text.

Reading a ``stats`` or ``slices`` reply: each release/instance carries ``histogram`` as
``[[bucket_index, count], ...]``; ``bucket_bounds(index)`` gives the bucket's ``(lower, upper)`` seconds,
``quantile(counts, q)`` a quantile of ``{index: count}``, and ``Histogram.from_pairs`` rebuilds a histogram
to merge, compare or take quantiles from. The verify recorder and the analysis use the same type.
"""

from __future__ import annotations

from shipyard.primitives.metrics.histogram import (
    MAX_VALUE,
    MIN_VALUE,
    NUM_BUCKETS,
    SCHEME,
    SUB_BUCKETS,
    BucketCounts,
    Histogram,
    bucket_bounds,
    bucket_index,
    bucket_midpoint,
    merge_counts,
    quantile,
)
from shipyard.primitives.metrics.prometheus import render
from shipyard.primitives.metrics.slices import RETENTION_S, Series, Slice, WindowStats, slice_json, window_of

__all__ = [
    "MAX_VALUE",
    "MIN_VALUE",
    "NUM_BUCKETS",
    "RETENTION_S",
    "SCHEME",
    "SUB_BUCKETS",
    "BucketCounts",
    "Histogram",
    "Series",
    "Slice",
    "WindowStats",
    "bucket_bounds",
    "bucket_index",
    "bucket_midpoint",
    "merge_counts",
    "quantile",
    "render",
    "slice_json",
    "window_of",
]
