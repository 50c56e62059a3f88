"""Config bounds (issue "Hardening", item 3): every number in shipyard.toml is bounded and finite, and
nested documents have a depth limit; a bad value is one line naming its key path, never a hang."""

from __future__ import annotations

import json
import math
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.engine.rollout.plan import CommitInfo, PlanInputs, ReleaseChoice, prepare
from shipyard.engine.rollout.state import EnvState
from shipyard.errors import ConfigError
from shipyard.primitives.spec.loading import parse_document, parse_spec

APP = '''\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
'''


def load(text: str, *, is_yaml: bool = False) -> Any:
    return parse_spec(parse_document(text, "shipyard.toml", is_yaml=is_yaml), Path("/p/shipyard.toml"))


def plan(spec: Any, strategy: str | None = None) -> Any:
    release = ReleaseChoice(id="r20260101000000-abcdef1", commit=CommitInfo(sha="a" * 40), build=True)
    return prepare(PlanInputs(kind="deploy", env="staging", spec=spec, state=EnvState("staging", None, None),
                              release=release, strategy=strategy))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return list(info.value.problems)


@pytest.mark.parametrize(("line", "needle"), [
    ("replicas = 99999999999999999999999", "environments.staging.replicas: must be at most 1000"),
    ("replicas = 100000", "environments.staging.replicas: must be at most 1000"),
    ("deploy_timeout = inf", "environments.staging.deploy_timeout: duration must be at most 24h"),
    ("deploy_timeout = nan", "environments.staging.deploy_timeout: expected a duration"),
    ('drain_timeout = "99999999999999999999h"', "environments.staging.drain_timeout: duration must be at most"),
    ('watch = "31d"', "environments.staging.watch: duration must be at most 30d"),
    ("max_surge = -1", "environments.staging.max_surge: must be at least 0"),
    ("keep_releases = 1e3", "environments.staging.keep_releases: must be a whole number"),
    ("canary = { steps = [10, 50, 100], confidence = nan }", "environments.staging.canary.confidence"),
    (f"canary = {{ steps = [{', '.join(['50'] * 101)}] }}", "environments.staging.canary.steps: must have at most 100"),
    ("verify = { rate = 1e300 }", "environments.staging.verify.rate: must be at most 1000000"),
    ("verify = { duration = inf }", "environments.staging.verify.duration"),
    ('verify = { thresholds = { http_req_duration = "p(95)<1e999" } }', "must be finite"),
    ("router = { max_body_size = 99999999999999999999 }", "environments.staging.router.max_body_size: must be at most"),
    ('router = { header_timeout = "1e5h" }', "environments.staging.router.header_timeout"),
    ("rollback = { error_rate = { above = inf } }", "environments.staging.rollback.error_rate.above"),
    ('rollback = { cpu = { above = "9999999%" } }', "environments.staging.rollback.cpu.above"),
    ("rollback = { request_rate = { below = 1e30 } }", "environments.staging.rollback.request_rate.below"),
    ('backup = { repository = "r", retention = { keep_last = 99999999999 } }',
     "environments.staging.backup.retention.keep_last: must be at most 10000"),
])
def test_out_of_bounds_values_name_their_key(line: str, needle: str) -> None:
    found = problems(APP + f"[environments.staging]\nport = 8000\n{line}\n")
    assert any(needle in p for p in found), found


def test_probe_and_stop_durations_are_bounded() -> None:
    found = problems(APP.replace('path = "/health"', 'path = "/health"\ninterval = inf\nretries = 10000')
                     + '[app.stop]\ngrace = "400d"\n[environments.staging]\nport = 8000\n')
    assert any(p.startswith("app.health.interval:") for p in found), found
    assert any(p.startswith("app.health.retries: must be at most 100") for p in found), found
    assert any(p.startswith("app.stop.grace: duration must be at most 24h") for p in found), found


def test_a_big_integer_literal_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load(APP + "[environments.staging]\nport = " + "9" * 5000 + "\n")
    assert "4300 digits" in info.value.problems[0]


@pytest.mark.parametrize("is_yaml", [False, True])
def test_deeply_nested_documents_are_refused(is_yaml: bool) -> None:
    deep = "[" * 2000 + "]" * 2000
    text = f"x: {deep}\n" if is_yaml else f"x = {deep}\n"
    with pytest.raises(ConfigError) as info:
        load(text, is_yaml=is_yaml)
    assert info.value.problems == ["tables and lists are nested more than 32 levels deep"]
    # Not deep enough for the parser to recurse out, still past the limit.
    with pytest.raises(ConfigError, match="invalid configuration"):
        load("x = " + "[" * 40 + "]" * 40 + "\n")


def test_yaml_alias_bombs_are_refused_quickly() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load("\n".join(lines) + "\n", is_yaml=True)
    assert time.monotonic() - start < 5
    assert "more than 100000 values" in info.value.problems[0]


def test_the_largest_allowed_replicas_plan_quickly() -> None:
    spec = load(APP + "[environments.staging]\nport = 8000\nreplicas = 1000\nmax_surge = 1000\n")
    start = time.monotonic()
    assert len(plan(spec).steps) < 10_000
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------------------
# Property: no numeric value makes spec loading + planning hang, crash or allocate without bound.

NUMERIC_KEYS = [
    "replicas", "max_surge", "max_unavailable", "port", "keep_releases", "drain_timeout", "scale_down_delay",
    "deploy_timeout", "watch", "canary.step_duration", "canary.min_samples", "canary.confidence",
    "canary.error_tolerance", "canary.error_tolerance_relative", "canary.latency_tolerance_min",
    "canary.inconclusive_limit", "canary.max_restarts", "verify.rate", "verify.duration", "verify.ramp",
    "verify.max_vus", "verify.timeout", "router.max_request_line", "router.max_header_size",
    "router.max_headers", "router.max_body_size", "router.header_timeout", "router.body_deadline",
    "router.max_pause", "rollback.health_failures", "rollback.error_rate.above", "rollback.p95.above",
    "rollback.cpu.above", "rollback.request_rate.below", "rollback.error_rate.for",
]

huge = st.sampled_from([10**22, 10**100, -(10**22), 2**63, 2**64 + 1, 100_000, 99_999])
values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6), huge,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["99999999999999999999h", "1e400", "inf", "nan", "-5s", "5%", "1e9%", "", "9" * 200,
                     "1h" * 40, "300/m", "0", "0.5s"]),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def document(chosen: dict[str, Any]) -> str:
    tables: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {"port": 8000}
    for key, value in chosen.items():
        head, _, rest = key.partition(".")
        if rest:
            tables.setdefault(head, {})[rest] = value
        else:
            top[key] = value
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for head, keys in tables.items():
        parts = []
        for sub, value in keys.items():
            first, _, leaf = sub.partition(".")
            parts.append(f"{first} = {{ {leaf} = {toml_value(value)} }}" if leaf else f"{sub} = {toml_value(value)}")
        lines.append(f"{head} = {{ {', '.join(parts)} }}")
    return APP + "[environments.staging]\n" + "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=st.dictionaries(st.sampled_from(NUMERIC_KEYS), values, min_size=1, max_size=6),
       strategy=st.sampled_from(["rolling", "blue-green", "canary"]))
def test_no_numeric_value_hangs_crashes_or_allocates_without_bound(chosen: dict[str, Any], strategy: str) -> None:
    text = document(chosen)
    tracemalloc.start()
    start = time.monotonic()
    try:
        try:
            spec = load(text)
        except ConfigError as err:
            assert err.problems and all(": " in p for p in err.problems), err.problems
            assert all("\n" not in p and len(p) < 300 for p in err.problems), err.problems
        else:
            plan(spec, strategy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 2.0, text
    assert peak < 64 * 1024 * 1024, text
