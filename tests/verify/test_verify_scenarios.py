"""Scenario mixes: weights, request encoding, scenario files — and what a real server receives."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.verify.runner import run_verify
from shipyard.engine.verify.scenarios import load_scenarios, pick_cycle, prepare
from shipyard.errors import ConfigError
from shipyard.primitives.spec.verify import ScenarioSpec, VerifySpec


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


def test_integer_weights_make_an_exact_smooth_cycle() -> None:
    cycle = pick_cycle([3, 5, 2, 1])
    assert len(cycle) == 11
    assert Counter(cycle) == {0: 3, 1: 5, 2: 2, 3: 1}
    assert all(a != b for a, b in zip(cycle, cycle[1:], strict=False) if 1 not in (a, b))  # spread, not clumped


def test_float_weights_hold_their_proportions() -> None:
    cycle = pick_cycle([0.3, 0.7])
    counts = Counter(cycle)
    assert counts[0] / len(cycle) == pytest.approx(0.3, abs=0.001)


def test_default_is_get_slash() -> None:
    [s] = load_scenarios(VerifySpec())
    [p] = prepare([s], "127.0.0.1:80")
    assert p.payload.startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n")
    assert p.ok(200) and p.ok(302) and not p.ok(404) and not p.ok(500)


def test_request_encoding_and_expected_status() -> None:
    s = ScenarioSpec.model_validate({"method": "post", "path": "/chat", "headers": {"X-Token": "t"},
                                     "body": '{"q": 1}', "expect_status": 201})
    [p] = prepare([s], "h:1")
    assert p.payload == (b'POST /chat HTTP/1.1\r\nHost: h:1\r\nUser-Agent: shipyard-verify\r\nX-Token: t\r\n'
                         b'Content-Length: 8\r\n\r\n{"q": 1}')
    assert p.ok(201) and not p.ok(200)


@pytest.mark.parametrize("bad", [{"path": "no-slash"}, {"weight": 0}, {"headers": {"Host": "x"}},
                                 {"method": "BREW"}, {"expect_status": [99]}])
def test_bad_scenarios_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ScenarioSpec.model_validate(bad)


def test_scenarios_file(tmp_path: Path) -> None:
    (tmp_path / "mix.json").write_text(json.dumps([{"path": "/a", "weight": 2}, {"path": "/b"}]))
    found = load_scenarios(_spec(scenarios_file="mix.json"), tmp_path)
    assert [(s.path, s.weight) for s in found] == [("/a", 2.0), ("/b", 1.0)]
    (tmp_path / "mix.toml").write_text('[[scenarios]]\npath = "/c"\nweight = 3\n')
    assert [s.path for s in load_scenarios(_spec(scenarios_file="mix.toml"), tmp_path)] == ["/c"]
    (tmp_path / "bad.json").write_text(json.dumps([{"path": "/a", "wieght": 2}]))
    with pytest.raises(ConfigError) as info:
        load_scenarios(_spec(scenarios_file="bad.json"), tmp_path)
    assert "scenarios[0].wieght" in str(info.value)
    with pytest.raises(ConfigError):
        load_scenarios(_spec(scenarios_file="missing.json"), tmp_path)


def test_scenarios_and_file_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either scenarios or scenarios_file"):
        _spec(scenarios=[{"path": "/"}], scenarios_file="x.json")


def test_a_real_server_receives_the_weighted_mix(server: str) -> None:
    mix = [{"name": "dashboard", "path": "/dashboard", "weight": 3},
           {"name": "chat", "method": "POST", "path": "/chat", "body": "hi", "weight": 5},
           {"name": "portfolio", "path": "/portfolio", "weight": 2},
           {"name": "news", "method": "HEAD", "path": "/news", "weight": 1}]
    spec = _spec(rate=110, duration=1, scenarios=mix)
    result = asyncio.run(run_verify(server, spec))
    with urllib.request.urlopen(server + "/__counts", timeout=10) as resp:
        counts = json.load(resp)
    assert counts == {"GET /dashboard": 30, "POST /chat": 50, "GET /portfolio": 20, "HEAD /news": 10}
    assert [(s.label, s.requests, s.failed) for s in result.scenarios] == [
        ("dashboard", 30, 0), ("chat", 50, 0), ("portfolio", 20, 0), ("news", 10, 0)]
    assert result.requests == 110 and result.failed == 0
