from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import bucket_indices, hist, sample

from shipyard.engine.analysis.measurements import Sample, Window, rollup
from shipyard.primitives.metrics import bucket_index, merge_counts, quantile


def test_layout_is_the_routers_with_edges_at_half_and_two_seconds() -> None:
    lat = np.array([1e-7, 0.0004, 0.01, 0.4999, 0.5, 1.9999, 2.0, 300.0, 5000.0])
    assert bucket_indices(lat).tolist() == [bucket_index(float(v)) for v in lat]
    assert bucket_index(0.5) == bucket_index(0.4999) + 1 and bucket_index(2.0) == bucket_index(1.9999) + 1


def test_window_latency_is_the_metrics_quantile() -> None:
    values = [0.001 * 1.01**i for i in range(600)]  # 1 ms … ~390 ms
    w = Window.of([sample(1, requests=600, latencies=values)], 0, 2)
    for q in (0.5, 0.95, 0.99):
        truth = float(np.quantile(values, q, method="inverted_cdf"))
        got = w.latency(q)
        assert got == quantile(hist(values), q)
        assert got is not None and abs(got - truth) / truth <= 1 / 64


def test_merge_counts_drops_zeros() -> None:
    assert merge_counts([{1: 2, 2: 0}, {1: 1, 5: 3}]) == {1: 3, 5: 3}


def test_window_totals_and_coverage() -> None:
    samples = [sample(t, requests=10, errors=1, latencies=[0.01] * 10) for t in (100, 101, 103)]
    w = Window.of(samples, 100, 105)
    assert (w.seconds, w.covered, w.coverage) == (5, 3, 0.6)
    assert (w.requests, w.errors) == (30, 3)
    assert w.error_rate == pytest.approx(0.1)
    assert w.request_rate == pytest.approx(10.0)  # over seconds with data
    assert sum(w.histogram.values()) == 30
    sub = w.sub(101, 103)
    assert (sub.start, sub.end, sub.requests) == (101, 103, 10)
    assert w.sub(200, 300).covered == 0
    assert Window.of([], 0, 0).coverage == 0.0


def test_window_excludes_end_second() -> None:
    w = Window.of([sample(t, requests=1) for t in range(10)], 3, 6)
    assert sorted(w.by_second) == [3, 4, 5]


def test_window_empty_values_are_none() -> None:
    w = Window.of([sample(1, requests=0)], 0, 5)
    assert w.error_rate is None and w.latency(0.5) is None
    assert w.request_rate == 0.0
    assert w.cpu is None and w.memory_share is None and w.health_failures is None


def test_resource_readings() -> None:
    s = [Sample(t, "r", "i1", cpu=c, rss=m, memory_limit=1000, health_failures=h)
         for t, c, m, h in [(1, 0.5, 100, 0), (2, None, None, None), (3, 1.5, 300, 2)]]
    w = Window.of(s, 0, 10)
    assert w.cpu == pytest.approx(1.0)
    assert w.memory_share == pytest.approx(0.2)
    assert w.health_failures == 2
    assert Sample(1, "r", rss=5).memory_share is None


def test_rollup_sums_instances_and_keeps_release_samples() -> None:
    s = [
        Sample(1, "r", "a", requests=5, errors=1, status={"2xx": 4, "5xx": 1}, latency={3: 5}, cpu=0.5,
               rss=100, health_failures=0),
        Sample(1, "r", "b", requests=7, status={"2xx": 7}, latency={3: 2, 4: 5}, cpu=0.25, rss=50,
               health_failures=2),
        Sample(2, "r", "a", requests=1),
        Sample(2, "r", None, requests=99),  # given release sample wins
        Sample(1, "s", "x", requests=3),
    ]
    out = {(x.release, x.t): x for x in rollup(s)}
    r1 = out[("r", 1)]
    assert (r1.instance, r1.requests, r1.errors) == (None, 12, 1)
    assert r1.status == {"2xx": 11, "5xx": 1} and r1.latency == {3: 7, 4: 5}
    assert r1.cpu == 0.75 and r1.rss == 150 and r1.health_failures == 2
    assert out[("r", 2)].requests == 99
    assert out[("s", 1)].requests == 3
