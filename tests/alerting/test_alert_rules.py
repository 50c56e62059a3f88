"""Alert rules, pure: expr parsing, the state machine (Prometheus' `for` / `keep_firing_for`), defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.engine.alerting.rules import DEFAULTS, Rule, rules_for
from shipyard.engine.alerting.states import AlertState, step
from shipyard.errors import ConfigError
from shipyard.primitives.spec import parse_spec
from shipyard.primitives.spec.alerting import parse_expr

BASE = {"app": {"name": "a", "run": "x", "health": {"path": "/h"}},
        "environments": {"prod": {"port": 8300}, "staging": {"port": 8200}}}


def rule(expr: str, for_s: float = 0, keep: float = 0) -> Rule:
    return Rule("R", "prod", parse_expr(expr), for_s, keep, "critical", "{{ env }} {{ value }}", None)


@pytest.mark.parametrize(("text", "series", "op", "threshold"), [
    ("error_rate > 5%", "error_rate", ">", 0.05),
    ("p95>2s", "p95", ">", 2.0),
    ("p99 >= 500ms", "p99", ">=", 0.5),
    ("rps < 1", "rps", "<", 1.0),
    ("availability < 99%", "availability", "<", 0.99),
    ("cpu > 90%", "cpu", ">", 0.9),
    ("restarts > 3", "restarts", ">", 3.0),
    ("up < 1", "up", "<", 1.0),
    ("health_failures >= 3", "health_failures", ">=", 3.0),
    ('backup_age{source="db"} > 26h', "backup_age", ">", 26 * 3600.0),
    ("drill_missed > 0", "drill_missed", ">", 0.0),
])
def test_parse(text: str, series: str, op: str, threshold: float) -> None:
    e = parse_expr(text)
    assert (e.series, e.op) == (series, op)
    assert e.threshold == pytest.approx(threshold)


def test_labels() -> None:
    assert parse_expr('backup_age{source="db"} > 1h').label("source") == "db"


def test_rate_window() -> None:
    assert parse_expr("error_rate > 5%").window is None  # the default window (values.RATE_WINDOW_S)
    assert parse_expr("error_rate[1m] > 5%").window == 60.0
    assert parse_expr("p95 [30s] >= 2s").window == 30.0


@pytest.mark.parametrize(("doc", "where", "says"), [
    ({"alerts": [{"name": "A", "expr": "latency > 2s"}]}, "alerts[0].expr", "unknown series 'latency'"),
    ({"alerts": [{"name": "A", "expr": "p95 > 2x"}]}, "alerts[0].expr", "threshold '2x'"),
    ({"alerts": [{"name": "A", "expr": "p95 => 2s"}]}, "alerts[0].expr", "expected '<series> <op> <threshold>'"),
    ({"alerts": [{"name": "A", "expr": "error_rate > 5"}]}, "alerts[0].expr", "percentage"),
    ({"alerts": [{"name": "A", "expr": "up < 1", "for": "soon"}]}, "alerts[0].for", "duration"),
    ({"alerts": [{"name": "A", "expr": "up[1m] < 1"}]}, "alerts[0].expr", "up takes no [window]"),
    ({"alerts": [{"name": "A", "expr": "rps[2h] < 1"}]}, "alerts[0].expr", "from 1s to 1h"),
    ({"alerts": [{"name": "A", "expr": "rps[soon] < 1"}]}, "alerts[0].expr", "window [soon] of rps"),
    ({"alerts": [{"name": "A", "expr": "up < 1", "env": "qa"}]}, "alerts[0].env", "unknown environment 'qa'"),
    ({"alerts": [{"name": "A", "expr": "up < 1", "summary": "{{ who }}"}]}, "alerts[0].summary", "placeholder"),
    ({"alerts": [{"name": "A", "expr": 'up{source="x"} < 1'}]}, "alerts[0].expr", "does not take the label"),
    ({"alerts": [{"name": "A", "expr": "up < 1"}, {"name": "A", "expr": "up < 2"}]}, "alerts[1].name", "already"),
    ({"alerts": [{"name": "A", "expr": "up < 1", "severity": "loud"}]}, "alerts[0].severity", ""),
    ({"metrics": {"listen": "localhost"}}, "metrics.listen", "host:port"),
    ({"metrics": {"retention": {"raw": "1y"}}}, "metrics.retention.raw", "duration"),
    ({"metrics": {"listne": "x"}}, "metrics.listne", "unknown key"),
])
def test_bad_input_names_the_key(doc: dict[str, object], where: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec({**BASE, **doc}, Path("/p/shipyard.toml"))
    lines = [p for p in err.value.problems if p.startswith(where + ":")]
    assert lines and says in lines[0], err.value.problems


def test_defaults_and_overrides() -> None:
    spec = parse_spec({**BASE, "alerts": [
        {"name": "HighErrorRate", "env": "prod", "expr": "error_rate > 1%", "for": "1m"},
        {"name": "Slow", "expr": "p99 > 1s"}]}, Path("/p/shipyard.toml"))
    rules = {(r.env, r.name): r for r in rules_for(spec)}
    assert rules["prod", "HighErrorRate"].expr.threshold == 0.01 and not rules["prod", "HighErrorRate"].default
    assert rules["staging", "HighErrorRate"].expr.threshold == 0.05 and rules["staging", "HighErrorRate"].default
    assert ("staging", "Slow") in rules
    assert len(rules) == 2 * (len(DEFAULTS) + 1)
    off = parse_spec({**BASE, "metrics": {"default_alerts": False}}, Path("/p/shipyard.toml"))
    assert rules_for(off) == []


def run(r: Rule, values: list[tuple[float, float | None]]) -> list[tuple[float, str]]:
    s: AlertState | None = None
    seen = []
    for now, v in values:
        s, change = step(r, s, v, now)
        if change:
            seen.append((now, change))
    return seen


def test_for_holds_pending_then_fires() -> None:
    r = rule("error_rate > 5%", for_s=60)
    seq = [(t, 0.1) for t in range(0, 75, 5)]
    assert run(r, seq) == [(0, "pending"), (60, "firing")]


def test_pending_that_clears_never_fires() -> None:
    r = rule("error_rate > 5%", for_s=60)
    assert run(r, [(0, 0.1), (30, 0.1), (35, 0.01), (40, 0.1), (95, 0.1), (100, 0.1)]) == [
        (0, "pending"), (35, "inactive"), (40, "pending"), (100, "firing")]


def test_keep_firing_for_and_resolved() -> None:
    r = rule("up < 1", keep=30)
    assert run(r, [(0, 0), (10, 1), (20, 0), (30, 1), (50, 1), (59, 1), (60, 1), (70, 0)]) == [
        (0, "firing"), (60, "resolved"), (70, "firing")]


def test_missing_value_is_not_true() -> None:
    r = rule("rps < 1", for_s=10)
    assert run(r, [(0, None), (5, 0.5), (10, None), (15, 0.5), (25, 0.5)]) == [
        (5, "pending"), (10, "inactive"), (15, "pending"), (25, "firing")]


def test_state_round_trips_through_json() -> None:
    r = rule("up < 1", for_s=60)
    s, _ = step(r, None, 0, 100.0)
    again = AlertState.from_json(s.to_json())
    assert again == s
    # A restart carries on from the saved state: no second "pending", fires on time.
    s2, change = step(r, again, 0, 130.0)
    assert change is None
    s3, change = step(r, s2, 0, 160.0)
    assert change == "firing" and s3.fired_at == 160.0


def test_summary_renders_value_in_the_series_unit() -> None:
    assert rule("error_rate > 5%").render(0.0731) == "prod 7.31%"
    assert rule("p95 > 2s").render(2.5) == "prod 2.5s"
