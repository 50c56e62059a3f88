"""Router measurements: log-linear latency histograms in 1-second slices, windows, Prometheus text.

Reading a ``stats`` reply: each release/instance carries ``histogram`` as ``[[bucket_index, count], ...]``;
``bucket_bounds(index)`` gives the bucket's ``(lower, upper)`` seconds and ``Histogram.from_pairs`` rebuilds
a histogram to merge, compare or take quantiles from.
"""

from __future__ import annotations

from shipyard.primitives.metrics.histogram import (
    MAX_VALUE,
    MIN_VALUE,
    NUM_BUCKETS,
    SCHEME,
    SUB_BUCKETS,
    Histogram,
    bucket_bounds,
    bucket_index,
    bucket_midpoint,
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
    "Histogram",
    "Series",
    "Slice",
    "WindowStats",
    "bucket_bounds",
    "bucket_index",
    "bucket_midpoint",
    "render",
    "slice_json",
    "window_of",
]
