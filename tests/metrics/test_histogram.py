from __future__ import annotations

import random

import numpy as np
import pytest

from shipyard.primitives.metrics import (
    MAX_VALUE,
    MIN_VALUE,
    NUM_BUCKETS,
    Histogram,
    Series,
    bucket_bounds,
    bucket_index,
    merge_counts,
    quantile,
    render,
    window_of,
)


@pytest.mark.parametrize("edge", [0.5, 2.0, 1.0, 0.25])
def test_bucket_edges_fall_exactly_on_round_seconds(edge: float) -> None:
    lo, _ = bucket_bounds(bucket_index(edge))
    assert lo == edge
    _, hi = bucket_bounds(bucket_index(edge) - 1)
    assert hi == edge


def test_every_bucket_contains_its_own_bounds() -> None:
    for i in range(1, NUM_BUCKETS - 1):
        lo, hi = bucket_bounds(i)
        assert bucket_index(lo) == i
        assert bucket_index(hi) == i + 1
        assert (hi - lo) / lo <= 1 / 32 + 1e-12


def test_out_of_range_values_clamp_and_bad_index_is_refused() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(MIN_VALUE / 10) == 0
    assert bucket_index(MAX_VALUE * 10) == NUM_BUCKETS - 1
    with pytest.raises(ValueError, match="bucket index"):
        bucket_bounds(NUM_BUCKETS)


def test_record_counts_each_value_in_its_bucket() -> None:
    values = [0.0, MIN_VALUE / 3, MIN_VALUE, 0.0004, 0.5, 0.4999999, 2.0, MAX_VALUE * 0.99, MAX_VALUE, 1e9]
    h = Histogram()
    for v in values:
        h.record(v)
    want: dict[int, int] = {}
    for v in values:
        want[bucket_index(v)] = want.get(bucket_index(v), 0) + 1
    assert h.counts == want and h.total == len(values) and (h.min, h.max) == (0.0, 1e9)


def test_buckets_are_contiguous() -> None:
    for i in range(1, NUM_BUCKETS):
        assert bucket_bounds(i - 1)[1] == bucket_bounds(i)[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_one_64th_of_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(-4.0, 1.2, 20_000)
    h = Histogram()
    for v in values:
        h.record(float(v))
    for q in (0.0, 0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = float(np.quantile(values, q, method="inverted_cdf"))  # nearest rank
        got = h.quantile(q)
        assert got is not None
        assert abs(got - exact) / exact <= 1 / 64 + 1e-12, (q, got, exact)
        assert quantile(h.counts, q) == pytest.approx(got, rel=1 / 32)  # unclamped: the bucket's midpoint
    assert h.min == values.min() and h.max == values.max()
    one = Histogram()
    one.record(0.0123)
    assert one.quantile(0.0) == one.quantile(1.0) == 0.0123  # clamped to the exact extremes
    assert h.mean == pytest.approx(values.mean()) and h.total == 20_000


def test_quantile_of_bare_counts_and_bad_q() -> None:
    i = bucket_index(0.1)
    lo, hi = bucket_bounds(i)
    assert quantile({i: 3, i + 5: 0}, 0.5) == (lo + hi) / 2
    assert quantile({}, 0.5) is None and quantile({i: 0}, 0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile({i: 1}, 1.5)


def test_merge_keeps_exact_extremes_and_bare_counts_drop_them() -> None:
    rnd = random.Random(4)
    a, b, both = Histogram(), Histogram(), Histogram()
    for _ in range(999):
        v = rnd.uniform(0.001, 0.2)
        (a if rnd.random() < 0.5 else b).record(v)
        both.record(v)
    a.merge(b)
    a.merge(Histogram())
    assert a.counts == both.counts and a.total == both.total == 999
    assert (a.min, a.max) == (both.min, both.max) and a.mean == pytest.approx(both.mean)
    assert a.quantile(0.5) == both.quantile(0.5)
    a.add_counts({bucket_index(5.0): 1})
    assert a.total == 1000 and a.min is None and a.max is None and a.mean is None and not a.exact
    assert a.quantile(1.0) == pytest.approx(5.0, rel=1 / 64)
    assert Histogram().min is None and Histogram().mean is None
    assert merge_counts([{1: 2, 2: 0}, {1: 1, 5: 3}]) == {1: 3, 5: 3}


def test_pairs_round_trip() -> None:
    h = Histogram()
    for v in (0.1, 0.4, 0.6, 3.0):
        h.record(v)
    again = Histogram.from_pairs(h.pairs())
    assert again.counts == h.counts and again.total == 4
    assert [n for _, _, n in again.buckets()] == [1, 1, 1, 1]
    assert [lo for lo, _, _ in h.buckets()] == [bucket_bounds(i)[0] for i, _ in h.pairs()]
    assert Histogram().quantile(0.5) is None


def test_series_windows_fold_only_the_asked_seconds() -> None:
    s = Series("prod", "r1", "i1")
    for sec, status in [(100, 200), (101, 500), (102, 200), (102, 404), (103, 0)]:
        s.record(sec, status, 0.01, 10, 20, upstream_error=status == 0)
    w = window_of(s, 103, 2)  # seconds 102 and 103
    js = w.to_json()
    assert js["requests"] == 3
    assert js["status"]["2xx"] == 1 and js["status"]["4xx"] == 1 and js["status"]["none"] == 1
    assert js["errors"] == 1 and js["upstream_errors"] == 1
    assert js["rate"] == 1.5
    assert window_of(s, 103, 900).requests == 5
    assert sum(n for _, n in js["histogram"]) == 3


def test_series_keeps_fifteen_minutes() -> None:
    s = Series("prod", "r1", "i1")
    for sec in range(1, 2000):
        s.record(sec, 200, 0.001, 0, 0)
    assert window_of(s, 1999, 900).requests == 900


def test_prometheus_text_has_counters_and_exact_histogram() -> None:
    s = Series("prod", "r1", "i1")
    s.record(1, 200, 0.3, 0, 0)
    s.record(1, 503, 1.5, 0, 0)
    text = render([s])
    assert 'http_requests_total{env="prod",release="r1",code="200"} 1' in text
    assert 'http_requests_total{env="prod",release="r1",code="503"} 1' in text
    assert 'http_request_duration_seconds_bucket{env="prod",release="r1",le="0.5"} 1' in text
    assert 'http_request_duration_seconds_bucket{env="prod",release="r1",le="2.0"} 2' in text
    assert 'http_request_duration_seconds_count{env="prod",release="r1"} 2' in text
