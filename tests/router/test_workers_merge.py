"""Merging router workers' replies (pure): counts add up, quantiles come from the merged histogram, and a
second still open in one worker is left for the next pull."""

from __future__ import annotations

from shipyard.primitives.metrics.histogram import Histogram, bucket_index
from shipyard.primitives.routermerge import merge_drain, merge_slices, merge_stats


def _slice(sec: int, ok: int, errors: int, latency: float) -> dict[str, object]:
    return {"sec": sec, "status": [0, 0, ok, 0, 0, errors], "upstream_errors": 0, "retried": 0,
            "histogram": [[bucket_index(latency), ok + errors]]}


def _slices_reply(now_sec: int, instances: list[dict[str, object]]) -> dict[str, object]:
    return {"env": "prod", "since": 90, "now_sec": now_sec, "histogram_scheme": "x", "roles": {"r1": "stable"},
            "weights": {"r1": 100.0}, "instances": instances}


def test_slices_sum_per_instance_and_second() -> None:
    a = _slices_reply(103, [{"id": "i1", "release": "r1", "ready": True, "retired": False,
                             "slices": [_slice(100, 10, 1, 0.01), _slice(101, 5, 0, 0.01)]}])
    b = _slices_reply(103, [{"id": "i1", "release": "r1", "ready": True, "retired": False,
                             "slices": [_slice(100, 7, 2, 0.5)]},
                            {"id": "i2", "release": "r1", "ready": True, "retired": False,
                             "slices": [_slice(102, 3, 0, 0.01)]}])
    merged = merge_slices([a, b])
    by_id = {i["id"]: i for i in merged["instances"]}
    s100 = by_id["i1"]["slices"][0]
    assert s100["sec"] == 100 and s100["status"] == [0, 0, 17, 0, 0, 3]
    assert dict(s100["histogram"]) == {bucket_index(0.01): 11, bucket_index(0.5): 9}
    assert [s["sec"] for s in by_id["i1"]["slices"]] == [100, 101]
    assert by_id["i2"]["slices"][0]["status"][2] == 3
    assert merged["now_sec"] == 103


def test_slices_keep_only_seconds_every_worker_finished() -> None:
    a = _slices_reply(105, [{"id": "i1", "release": "r1", "ready": True, "retired": False,
                             "slices": [_slice(103, 1, 0, 0.01), _slice(104, 1, 0, 0.01)]}])
    b = _slices_reply(104, [{"id": "i1", "release": "r1", "ready": True, "retired": False,
                             "slices": [_slice(103, 1, 0, 0.01)]}])
    merged = merge_slices([a, b])
    assert merged["now_sec"] == 104
    assert [s["sec"] for s in merged["instances"][0]["slices"]] == [103]  # 104 comes with the next pull


def _window(ok: int, errors: int, latencies: list[float], inflight: int = 0) -> dict[str, object]:
    h = Histogram()
    for v in latencies:
        h.record(v)
    n = ok + errors
    return {"requests": n, "status": {"1xx": 0, "2xx": ok, "3xx": 0, "4xx": 0, "5xx": errors, "none": 0},
            "errors": errors, "error_rate": errors / n if n else 0.0, "upstream_errors": 0, "inflight": inflight,
            "bytes_in": 10 * n, "bytes_out": 20 * n, "rate": float(n), "mean": sum(latencies) / n if n else None,
            "p50": h.quantile(0.5), "p95": h.quantile(0.95), "p99": h.quantile(0.99), "histogram": h.pairs()}


def test_stats_recompute_rates_and_quantiles() -> None:
    fast = [0.01] * 90
    slow = [1.0] * 10
    a = {"env": "prod", "window_s": 10, "time": 1.0, "releases": {"r1": {
        **_window(90, 0, fast, inflight=2), "role": "stable", "weight": 100.0, "draining": False,
        "instances": {"i1": _window(90, 0, fast, inflight=2)}}}, "unrouted": _window(0, 0, []),
         "connections": 3, "paused": False, "maintenance": False}
    b = {"env": "prod", "window_s": 10, "time": 2.0, "releases": {"r1": {
        **_window(0, 10, slow, inflight=1), "role": "stable", "weight": 100.0, "draining": False,
        "instances": {"i1": _window(0, 10, slow, inflight=1)}}}, "unrouted": _window(0, 0, []),
         "connections": 4, "paused": False, "maintenance": True}
    merged = merge_stats([a, b])
    rel = merged["releases"]["r1"]
    assert rel["requests"] == 100 and rel["errors"] == 10 and rel["error_rate"] == 0.1
    assert rel["inflight"] == 3 and rel["rate"] == 10.0
    assert abs(rel["mean"] - (0.9 * 0.01 + 0.1 * 1.0)) < 1e-9
    assert rel["p50"] < 0.02 and rel["p99"] > 0.9  # the slow tenth lives in worker b alone
    assert rel["instances"]["i1"]["requests"] == 100
    assert merged["connections"] == 7 and merged["maintenance"] is True and merged["workers"] == 2


def test_drain_needs_every_worker() -> None:
    assert merge_drain([{"drained": True, "inflight": 0}, {"drained": False, "inflight": 2}]) == \
        {"drained": False, "inflight": 2}
    assert merge_drain([{"drained": True, "inflight": 0}] * 2)["drained"] is True
