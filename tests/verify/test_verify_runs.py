"""Real runs against real servers on 127.0.0.1: verdicts, failures, refusals, reports."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.verify import Progress, report_path, run_verify, verify_gate, write_report
from shipyard.errors import BadInput, NoGo, ShipyardError
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.spec.verify import VerifySpec

JSON_KEYS = {"go", "rate_requested", "rate_achieved", "requests", "failed_rate", "latency_ms", "thresholds",
             "series", "generator"}


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


def test_go_against_a_healthy_server(server: str) -> None:
    spec = _spec(rate=200, duration=2, thresholds={
        "http_req_duration": ["p(95)<2000", "max<10000"], "http_req_failed": "rate<0.01",
        "http_reqs": ["count==400"], "dropped_iterations": "count==0"})
    ticks: list[Progress] = []
    result = asyncio.run(run_verify(server, spec, on_progress=ticks.append))
    assert result.go, result.headline()
    result.require_go()
    assert result.requests == 400 and result.failed == 0
    assert result.rate_requested == 200
    assert result.rate_achieved == pytest.approx(200, rel=0.05)
    assert all(t.ok for t in result.thresholds) and len(result.thresholds) == 5
    assert dict(result.statuses) == {200: 400}
    assert ticks and ticks[-1].sent <= 400
    doc = json.loads(json.dumps(result.to_json()))
    assert set(doc) >= JSON_KEYS
    assert set(doc["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert doc["thresholds"][0] == {"metric": "http_req_duration", "expr": "p(95)<2000",
                                    "observed": doc["thresholds"][0]["observed"], "ok": True}
    assert sum(p["requests"] for p in doc["series"]) == 400
    assert doc["generator"]["cpu_percent"] >= 0


def test_server_errors_are_no_go_with_exit_99(start_server: Callable[..., str]) -> None:
    url = start_server("--status", "/boom=500")
    spec = _spec(rate=100, duration=1, scenarios=[{"path": "/", "weight": 1}, {"path": "/boom", "weight": 1}],
                      thresholds={"http_req_failed": "rate<0.01", "http_req_duration": "p(95)<5000"})
    result = asyncio.run(run_verify(url, spec))
    assert not result.go
    p95, failed_rate = result.thresholds
    assert failed_rate.observed == pytest.approx(0.5) and not failed_rate.ok
    assert p95.ok
    with pytest.raises(NoGo) as info:
        result.require_go()
    assert info.value.exit_code == 99
    assert "http_req_failed rate<0.01 (observed 50.000%)" in str(info.value)


def test_expect_status_turns_a_404_into_success(start_server: Callable[..., str]) -> None:
    url = start_server("--status", "/gone=404")
    spec = _spec(rate=50, duration=1, scenarios=[{"path": "/gone", "expect_status": 404}],
                      thresholds={"http_req_failed": "rate==0"})
    assert asyncio.run(run_verify(url, spec)).go


def test_rate_and_duration_override_the_spec(server: str) -> None:
    result = asyncio.run(run_verify(server, _spec(rate=1000, duration=60), rate=50, duration=1.0))
    assert result.requests == 50 and result.rate_requested == 50 and result.duration == 1.0


def test_nothing_listening_is_an_error_not_a_verdict() -> None:
    with pytest.raises(ShipyardError, match="nothing is listening"):
        asyncio.run(run_verify(f"http://127.0.0.1:{free_port()}", _spec(rate=10, duration=1)))


@pytest.mark.parametrize("target", ["https://127.0.0.1:1", "127.0.0.1:8000", "http://127.0.0.1:1/app"])
def test_bad_targets(target: str) -> None:
    with pytest.raises(BadInput):
        asyncio.run(run_verify(target, _spec(rate=10, duration=1)))


def test_pool_cap_and_timeouts_are_reported(start_server: Callable[..., str]) -> None:
    # Every response stalls 3 s; two connections and a 0.5 s timeout cannot hold 40 req/s.
    url = start_server("--stall-every", "100", "--stall-for", "3")
    spec = _spec(rate=40, duration=1, max_vus=2, timeout=0.5,
                      thresholds={"dropped_iterations": "count==0"})
    result = asyncio.run(run_verify(url, spec))
    assert not result.go
    assert result.generator is not None and result.generator.connections <= 2
    assert result.generator.dropped > 0
    assert dict(result.errors).get("timeout", 0) >= 1
    assert any("could not hold the rate" in w for w in result.warnings)


def test_ramp_is_not_judged(server: str) -> None:
    spec = _spec(rate=100, duration=1, ramp=1, thresholds={"http_reqs": "count==100"})
    result = asyncio.run(run_verify(server, spec))
    assert result.go, result.headline()
    assert sum(p.requests for p in result.series) == 150  # 50 in the ramp + 100 judged
    assert result.series[0].ramp


def test_html_report(server: str, tmp_path: Path) -> None:
    spec = _spec(rate=100, duration=2, thresholds={"http_req_duration": ["p(95)<0.001"]})
    result = asyncio.run(run_verify(server, spec))
    assert not result.go
    path = write_report(result, report_path(tmp_path / ".shipyard", "staging", result.started_at), env="staging")
    assert path.parent == tmp_path / ".shipyard" / "reports"
    assert path.name.startswith("verify-staging-") and path.suffix == ".html"
    html = path.read_text()
    assert "NO-GO" in html and "p(95)&lt;0.001" in html and "FAIL" in html
    assert html.count("<svg") == 3  # histogram, latency over time, throughput over time
    assert "<script" not in html and "http://" not in html.replace(server, "").replace(
        "http://www.w3.org/2000/svg", "")
    assert not math.isnan(result.latency.p99)


def test_cancelling_stops_the_generator(server: str) -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(run_verify(server, _spec(rate=50, duration=60),
                                              on_progress=lambda p: started.set()))
        await asyncio.wait_for(started.wait(), 30)  # the generator is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())


def test_deploy_gate_saves_the_report_and_hands_back_the_verdict(server: str, tmp_path: Path) -> None:
    spec = _spec(rate=50, duration=1, thresholds={"http_req_duration": "p(95)<0.001"})
    result, path = asyncio.run(verify_gate(server, spec, env="prod", state_dir=tmp_path))
    assert path.exists() and path.parent == tmp_path / "reports" and "verify-prod-" in path.name
    assert not result.go
    with pytest.raises(NoGo):
        result.require_go()
