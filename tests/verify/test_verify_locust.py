"""--locustfile: Locust's own results judged by the same thresholds."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.verify.locust import check_thresholds, result_from_csv, result_from_json, run_locust
from shipyard.engine.verify.thresholds import parse
from shipyard.errors import BadInput
from shipyard.primitives.spec.verify import VerifySpec

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Visitor(FastHttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/")

    @task(1)
    def boom(self):
        self.client.get("/boom")
"""

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/,300,0,4,5.5,0.5,120,3.0,100.0,0.0,4,5,6,7,9,12,20,40,110,120,120
GET,/boom,100,100,4,5.0,0.4,90,3.0,33.3,33.3,4,5,6,7,9,11,18,30,90,90,90
,Aggregated,400,100,4,5.4,0.4,120,3.0,133.3,33.3,4,5,6,7,9,12,20,40,110,120,120
"""


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


def test_stats_csv_maps_into_the_same_verdict(tmp_path: Path) -> None:
    (tmp_path / "run_stats.csv").write_text(STATS)
    spec = _spec(thresholds={"http_req_duration": ["p(95)<50", "med<10"], "http_req_failed": "rate<0.01",
                                  "http_reqs": "count>=400"})
    result = result_from_csv(tmp_path / "run_stats.csv", tmp_path / "missing.csv", target="http://127.0.0.1:1",
                             spec=spec, thresholds=spec.thresholds.parsed(), duration=3, rate_requested=100,
                             started_at=0)
    assert [(t.expr, t.observed, t.ok) for t in result.thresholds] == [
        ("p(95)<50", 12.0, True), ("med<10", 4.0, True), ("rate<0.01", 0.25, False), ("count>=400", 400.0, True)]
    assert not result.go and result.source == "locust"
    assert result.latency.p99 == 40 and result.rate_achieved == pytest.approx(133.3)
    assert [(s.label, s.requests, s.failed) for s in result.scenarios] == [("GET /", 300, 0), ("GET /boom", 100, 100)]


def test_dropped_iterations_has_no_meaning_for_locust() -> None:
    with pytest.raises(BadInput, match="closed model"):
        check_thresholds([parse("dropped_iterations", "count==0")])
    check_thresholds([parse("http_req_duration", "p(97)<5")])


FINAL = [
    {"name": "/", "method": "GET", "num_requests": 300, "num_failures": 0, "total_response_time": 1500.0,
     "min_response_time": 0.5, "max_response_time": 120.0, "start_time": 100.0, "last_request_timestamp": 103.0,
     "response_times": {"4": 200, "10": 97, "120": 3}},
    {"name": "/boom", "method": "GET", "num_requests": 100, "num_failures": 100, "total_response_time": 500.0,
     "min_response_time": 0.4, "max_response_time": 9.0, "start_time": 100.5, "last_request_timestamp": 102.9,
     "response_times": {"4": 90, "9": 10}},
]


def test_final_json_maps_into_the_same_verdict_with_any_percentile(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps(FINAL))
    spec = _spec(thresholds={"http_req_duration": ["p(97)<50", "p(99.5)<50", "avg<10"],
                             "http_req_failed": "rate<0.01"})
    result = result_from_json(tmp_path / "run.json", tmp_path / "missing.csv", target="http://127.0.0.1:1",
                              spec=spec, thresholds=spec.thresholds.parsed(), duration=3, rate_requested=100,
                              started_at=0)
    assert [(t.expr, t.observed, t.ok) for t in result.thresholds] == [
        ("p(97)<50", 10.0, True), ("p(99.5)<50", 120.0, False), ("avg<10", 5.0, True), ("rate<0.01", 0.25, False)]
    assert result.requests == 400 and result.rate_achieved == pytest.approx(400 / 3)
    assert result.latency.p50 == 4.0 and result.latency.max == 120.0 and result.latency.min == 0.4


@pytest.mark.skipif(importlib.util.find_spec("locust") is None,
                    reason="Locust is an optional extra (pip install locust); not installed here")
def test_real_locust_run(start_server: Callable[..., str], tmp_path: Path) -> None:
    url = start_server("--status", "/boom=500")
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    spec = _spec(thresholds={"http_req_failed": "rate<0.01", "http_req_duration": "p(99)<5000"})
    result = asyncio.run(run_locust(tmp_path / "locustfile.py", url, spec, users=2, duration=2))
    assert result.source == "locust" and result.requests > 10
    failed = next(t for t in result.thresholds if t.metric == "http_req_failed")
    assert 0.1 < failed.observed < 0.45 and not failed.ok  # ~1 in 4 requests hits /boom
    assert not result.go


def test_missing_locust_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shipyard.engine.verify.locust as mod

    monkeypatch.setattr(mod, "locust_installed", lambda: False)
    with pytest.raises(BadInput, match="pip install locust"):
        asyncio.run(run_locust(tmp_path / "locustfile.py", "http://127.0.0.1:1", VerifySpec()))
