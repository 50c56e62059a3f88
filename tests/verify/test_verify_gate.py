"""The verify gate against a real server on 127.0.0.1: report written, require_go, the step's summary."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.verify import GateOutcome, verify_gate
from shipyard.errors import BadInput, NoGo
from shipyard.primitives.spec.verify import VerifySpec


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


def test_go_writes_the_report_and_summarises_the_step(server: str, tmp_path: Path) -> None:
    spec = _spec(rate=100, duration=1, thresholds={"http_req_duration": "p(95)<5000", "http_req_failed": "rate<0.01"})
    outcome = asyncio.run(verify_gate(server, spec, env="staging", state_dir=tmp_path))
    assert isinstance(outcome, GateOutcome) and outcome.go
    result, report = outcome
    assert report == outcome.report and report.parent == tmp_path / "reports" and "GO" in report.read_text()
    assert outcome.require_go() is None
    summary = json.loads(json.dumps(outcome.summary()))
    assert summary == {
        "go": True, "rate_requested": 100, "rate_achieved": round(result.rate_achieved, 3), "requests": 100,
        "failed_rate": 0.0, "latency_ms": summary["latency_ms"], "failed_thresholds": [],
        "warnings": list(result.warnings), "report": str(report),
    }
    lat = summary["latency_ms"]
    assert set(lat) == {"p50", "p90", "p95", "p99", "max"}
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["p95"] == round(result.latency.p95, 3)


def test_no_go_names_each_failing_threshold_with_its_observed_value(
        start_server: Callable[..., str], tmp_path: Path) -> None:
    url = start_server("--status", "/boom=500")
    spec = _spec(rate=100, duration=1, scenarios=[{"path": "/", "weight": 1}, {"path": "/boom", "weight": 1}],
                 thresholds={"http_req_failed": "rate<0.01", "http_req_duration": ["p(95)<0.001", "max<60000"]})
    outcome = asyncio.run(verify_gate(url, spec, env="prod", state_dir=tmp_path))
    assert not outcome.go and outcome.report.exists() and "NO-GO" in outcome.report.read_text()
    with pytest.raises(NoGo) as info:
        outcome.require_go()
    message = str(info.value)
    assert info.value.exit_code == 99
    assert "http_req_failed rate<0.01 (observed 50.000%)" in message
    p95 = next(t for t in outcome.result.thresholds if t.expr == "p(95)<0.001")
    assert f"http_req_duration p(95)<0.001 (observed {p95.observed_text()})" in message
    assert "max<60000" not in message  # a passing threshold is not a reason
    assert str(outcome.report) in message
    summary = outcome.summary()
    assert summary["go"] is False and summary["failed_rate"] == pytest.approx(0.5)
    assert sorted(summary["failed_thresholds"]) == [
        f"http_req_duration p(95)<0.001 (observed {p95.observed_text()})", "http_req_failed rate<0.01 (observed 50.000%)"]


def test_overrides_and_an_explicit_report_path(server: str, tmp_path: Path) -> None:
    where = tmp_path / "elsewhere" / "verify.html"
    outcome = asyncio.run(verify_gate(server, _spec(rate=1000, duration=60), env="dev", state_dir=tmp_path,
                                      rate=40, duration=1.0, report=where))
    assert outcome.report == where and where.exists() and not (tmp_path / "reports").exists()
    assert outcome.result.requests == 40 and outcome.summary()["rate_requested"] == 40


def test_a_run_that_cannot_happen_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        asyncio.run(verify_gate("https://127.0.0.1:1", _spec(rate=10, duration=1), env="dev", state_dir=tmp_path))
    assert not (tmp_path / "reports").exists()


def test_a_locustfile_goes_through_locust(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="locustfile .*nope.py does not exist"):
        asyncio.run(verify_gate(server, _spec(rate=10, duration=1), env="dev", state_dir=tmp_path,
                                locustfile=tmp_path / "nope.py"))
