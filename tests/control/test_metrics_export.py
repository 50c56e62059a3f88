"""Router counters → Prometheus text: status classes, exact cumulative `le` buckets, retries."""

from __future__ import annotations

from shipyard.control.metrics_export import Exposition, MetricsExporter, RouterCounters
from shipyard.primitives.metrics import bucket_index
from shipyard.primitives.metrics.prometheus import LE_EDGES


def test_router_series_from_slices() -> None:
    counters = RouterCounters()
    fast, slow = bucket_index(0.003), bucket_index(1.5)
    reply = {"instances": [
        {"id": "a", "release": "r1", "slices": [
            {"sec": 100, "status": [1, 0, 7, 0, 2, 1], "upstream_errors": 1, "retried": 1,
             "histogram": [[fast, 9], [slow, 2]]},
            {"sec": 110, "status": [0, 0, 5, 0, 0, 0], "histogram": [[fast, 5]]},  # not before `end`: next tick
        ]},
        {"id": "b", "release": "r1", "slices": [{"sec": 101, "status": [0, 0, 3, 0, 0, 0], "histogram": [[slow, 3]]}]},
    ]}
    counters.add_reply("prod", reply, end=110)
    out = Exposition()
    exporter = MetricsExporter.__new__(MetricsExporter)
    exporter.counters = counters
    exporter._router(out)
    lines = set(out.lines)
    for code, n in (("none", 1), ("2xx", 10), ("4xx", 2), ("5xx", 1)):
        assert f'http_requests_total{{env="prod",release="r1",code="{code}"}} {n}.0' in lines
    assert not any('code="3xx"' in line for line in lines)

    def bucket(le: str) -> float:
        prefix = f'http_request_duration_seconds_bucket{{env="prod",release="r1",le="{le}"}} '
        return float(next(line for line in lines if line.startswith(prefix)).split()[-1])

    below_slow = [e for e in LE_EDGES if e <= 1.5]
    assert bucket(repr(float(below_slow[-1]))) == 9  # the edges are bucket edges: the 3 ms ones only
    assert bucket("2.0") == 14 and bucket("+Inf") == 14
    assert 'router_upstream_retries_total{env="prod",release="r1"} 1.0' in lines
    assert 'router_upstream_errors_total{env="prod",release="r1"} 1.0' in lines
