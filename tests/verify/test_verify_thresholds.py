"""k6 threshold syntax: what parses, what is refused with which message, and how verdicts fall."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.verify.thresholds import Observed, evaluate, parse, parse_all
from shipyard.errors import BadInput, ConfigError
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.verify import VerifySpec

GOOD = [
    ("http_req_duration", "p(95)<500", "p", 95.0, "<", 500.0),
    ("http_req_duration", "p(99.9) <= 1000", "p", 99.9, "<=", 1000.0),
    ("http_req_duration", "avg<200", "avg", None, "<", 200.0),
    ("http_req_duration", "med>=1.5", "med", None, ">=", 1.5),
    ("http_req_duration", "max < 2e3", "max", None, "<", 2000.0),
    ("http_req_duration", "min>0", "min", None, ">", 0.0),
    ("http_req_failed", "rate<0.001", "rate", None, "<", 0.001),
    ("http_reqs", "rate>=1000", "rate", None, ">=", 1000.0),
    ("http_reqs", "count==60000", "count", None, "==", 60000.0),
    ("http_reqs", "count===5", "count", None, "==", 5.0),
    ("dropped_iterations", "count==0", "count", None, "==", 0.0),
]


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


@pytest.mark.parametrize(("metric", "text", "agg", "pct", "op", "value"), GOOD)
def test_good_thresholds_parse(metric: str, text: str, agg: str, pct: float | None, op: str, value: float) -> None:
    t = parse(metric, text)
    assert (t.metric, t.aggregation, t.percentile, t.op, t.value) == (metric, agg, pct, op, value)
    assert t.expr == text.strip()


BAD = [
    ("http_req_duration", "p(95)<<500", "expected 'AGGREGATION OPERATOR NUMBER'"),
    ("http_req_duration", "p95<500", "like 'p(95)<500'"),
    ("http_req_duration", "p(95)", "expected 'AGGREGATION OPERATOR NUMBER'"),
    ("http_req_duration", "p(101)<5", "percentile must be between 0 and 100"),
    ("http_req_duration", "rate<0.1", "http_req_duration has no 'rate'"),
    ("http_req_duration", "avg<fast", "expected"),
    ("http_req_failed", "p(95)<0.1", "has no percentiles"),
    ("http_req_failed", "rate<5", "fraction between 0 and 1"),
    ("http_reqs", "avg>3", "http_reqs has no 'avg'"),
    ("http_req_latency", "avg<3", "unknown metric 'http_req_latency'"),
]


@pytest.mark.parametrize(("metric", "text", "message"), BAD)
def test_bad_thresholds_are_bad_input_naming_them(metric: str, text: str, message: str) -> None:
    with pytest.raises(BadInput) as info:
        parse(metric, text)
    assert message in str(info.value)
    assert info.value.exit_code == 2
    assert f"thresholds.{metric}" in str(info.value)


def test_a_single_string_is_one_threshold() -> None:
    spec = _spec(thresholds={"http_req_failed": "rate<0.01"})
    assert [t.expr for t in spec.thresholds.parsed()] == ["rate<0.01"]
    assert [t.expr for t in parse_all({"http_reqs": "rate>1"})] == ["rate>1"]


def test_malformed_threshold_in_shipyard_toml_is_a_config_error_with_key_path(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("""
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.staging]
port = 8200
[environments.staging.verify]
rate = 100
thresholds = { http_req_duration = ["p(95)<500", "p(99)=<1000"], http_req_failed = ["rate<0.001"] }
""")
    with pytest.raises(ConfigError) as info:
        load_spec(tmp_path / "shipyard.toml")
    text = str(info.value)
    assert "environments.staging.verify.thresholds.http_req_duration[1]" in text
    assert "'p(99)=<1000'" in text
    assert info.value.exit_code == 2


def test_issue_example_loads(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("""
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.staging]
port = 8200
[environments.staging.verify]
rate = 1000
duration = "60s"
thresholds = { http_req_duration = ["p(50)<250", "p(95)<500", "p(99)<1000"], http_req_failed = ["rate<0.001"], http_reqs = ["rate>=1000"] }
""")
    verify = load_spec(tmp_path / "shipyard.toml").env("staging").verify
    assert verify is not None
    assert (verify.rate, verify.duration) == (1000.0, 60.0)
    assert [t.expr for t in verify.thresholds.parsed()] == [
        "p(50)<250", "p(95)<500", "p(99)<1000", "rate<0.001", "rate>=1000"]


def _observed(**kw: float) -> Observed:
    quantiles = {0.5: 100.0, 0.95: 400.0, 0.99: 900.0}
    base: dict[str, float] = {"seconds": 60.0, "requests": 60000, "failed": 30, "dropped": 0,
                              "avg_ms": 150.0, "min_ms": 1.0, "max_ms": 1500.0}
    base.update(kw)
    return Observed(seconds=base["seconds"], requests=int(base["requests"]), failed=int(base["failed"]),
                    dropped=int(base["dropped"]), avg_ms=base["avg_ms"], min_ms=base["min_ms"],
                    max_ms=base["max_ms"], quantile_ms=lambda q: quantiles.get(q, math.nan))


VERDICTS = [
    ("http_req_duration", "p(95)<500", 400.0, True),
    ("http_req_duration", "p(99)<500", 900.0, False),
    ("http_req_duration", "med<=100", 100.0, True),
    ("http_req_duration", "avg<100", 150.0, False),
    ("http_req_duration", "max<2000", 1500.0, True),
    ("http_req_failed", "rate<0.001", 0.0005, True),
    ("http_req_failed", "rate<0.0001", 0.0005, False),
    ("http_reqs", "rate>=1000", 1000.0, True),
    ("http_reqs", "rate>1000", 1000.0, False),
    ("http_reqs", "count==60000", 60000.0, True),
    ("dropped_iterations", "count==0", 0.0, True),
    ("http_req_duration", "p(90)<500", math.nan, False),  # not observable: fails rather than passes
]


@pytest.mark.parametrize(("metric", "text", "observed", "ok"), VERDICTS)
def test_verdicts(metric: str, text: str, observed: float, ok: bool) -> None:
    [result] = evaluate([parse(metric, text)], _observed())
    assert result.ok is ok
    assert (math.isnan(result.observed) and math.isnan(observed)) or result.observed == pytest.approx(observed)
    assert result.to_json()["metric"] == metric


def test_no_requests_fails_rate_thresholds() -> None:
    [failed, reqs] = evaluate([parse("http_req_failed", "rate<0.1"), parse("http_reqs", "count>0")],
                              _observed(requests=0, failed=0))
    assert not failed.ok and not reqs.ok
