"""The pure notification engine: routing, grouping timers, repeat, resolved once, silences (test clock)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.engine.alerting.notify import (
    Alert,
    Group,
    Silence,
    event_notifications,
    flush,
    ingest,
    labels_of,
    parse_matchers,
    route,
)
from shipyard.primitives.spec.notifications import NotificationsSpec


def spec(**kw: object) -> NotificationsSpec:
    base: dict[str, object] = {
        "receivers": [{"name": "slack", "kind": "slack", "url_secret": "SLACK"},
                      {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "from": "a@b.c", "to": ["d@e.f"]},
                      {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:1/x", "send_resolved": False}],
        "routes": [{"match": {"severity": "critical"}, "receivers": ["slack", "mail"], "continue": True},
                   {"match_re": {"env": "prod|staging"}, "receivers": ["hook"]}],
    }
    base.update(kw)
    return NotificationsSpec.model_validate(base)


def alert(name: str = "HighErrorRate", env: str = "prod", severity: str = "critical", t: float = 0.0) -> Alert:
    return Alert(labels_of({"alertname": name, "env": env, "severity": severity}),
                 labels_of({"summary": f"{name} on {env}"}), t)


def step(ns: NotificationsSpec, groups: dict[str, Group], firing: list[Alert], now: float,
         silences: list[Silence] | None = None) -> tuple[dict[str, Group], list]:  # type: ignore[type-arg]
    kept, _ended, notes = flush(ns, ingest(ns, groups, firing, now), silences or [], now)
    return kept, notes


def test_routes_first_match_and_continue() -> None:
    ns = spec()
    assert [m.receivers for m in route(ns, {"severity": "critical", "env": "prod"})] == [("slack", "mail"), ("hook",)]
    assert [m.receivers for m in route(ns, {"severity": "warning", "env": "staging"})] == [("hook",)]
    assert route(ns, {"severity": "warning", "env": "dev"}) == []  # no route matches: nobody
    assert [m.receivers for m in route(spec(routes=[]), {"env": "x"})] == [("slack", "mail", "hook")]


def test_group_wait_interval_repeat_and_one_resolved() -> None:
    ns = spec(group_wait="30s", group_interval="5m", repeat_interval="4h")
    g: dict[str, Group] = {}
    a = alert()
    g, notes = step(ns, g, [a], 0)
    assert notes == []  # waiting group_wait
    g, notes = step(ns, g, [a], 29)
    assert notes == []
    g, notes = step(ns, g, [a], 30)
    assert sorted(n.receiver for n in notes) == ["hook", "mail", "slack"]
    assert all(n.status == "firing" for n in notes)
    # Nothing more inside repeat_interval, at every group_interval tick.
    for t in range(35, 4 * 3600, 60):
        g, notes = step(ns, g, [a], t)
        assert notes == [], t
    g, notes = step(ns, g, [a], 30 + 4 * 3600 + 300)
    assert notes and all(n.repeat for n in notes)
    # Resolved: sent once at the next tick, to receivers with send_resolved; then the group is gone.
    g, notes = step(ns, g, [], 30 + 4 * 3600 + 301)
    assert notes == []  # the next flush is group_interval after the last one
    g, notes = step(ns, g, [], 30 + 4 * 3600 + 600)
    assert sorted(n.receiver for n in notes) == ["mail", "slack"]
    assert all(n.status == "resolved" and n.alerts[0].status == "resolved" for n in notes)
    assert g == {}
    g, notes = step(ns, g, [], 30 + 5 * 3600)
    assert notes == [] and g == {}


def test_new_alert_joins_group_at_next_interval() -> None:
    ns = spec(group_by=["alertname"], group_wait="10s", group_interval="1m")
    g, notes = step(ns, {}, [alert(env="prod")], 0)
    g, notes = step(ns, g, [alert(env="prod")], 10)
    assert len(notes) == 3
    both = [alert(env="prod"), alert(env="staging")]
    g, notes = step(ns, g, both, 20)
    assert notes == []
    g, notes = step(ns, g, both, 70)
    firing = [n for n in notes if n.receiver == "slack"][0]
    assert len(firing.alerts) == 2


def test_silence_sends_nothing_and_its_end_makes_the_alert_new() -> None:
    ns = spec(group_wait="0s", group_interval="1m")
    sil = Silence(1, parse_matchers("env=prod,alertname=~High.*"), 0, 600)
    g, notes = step(ns, {}, [alert()], 0, [sil])
    assert notes == []
    for t in range(60, 600, 60):
        g, notes = step(ns, g, [alert()], t, [sil])
        assert notes == []
    g, notes = step(ns, g, [alert()], 600, [sil])
    assert len(notes) == 3
    # A silenced alert that resolves sends no resolved notification either.
    g2, notes = step(ns, {}, [alert(env="staging")], 0, [Silence(2, parse_matchers("env=staging"), 0, 999)])
    g2, notes = step(ns, g2, [], 60, [Silence(2, parse_matchers("env=staging"), 0, 999)])
    assert notes == [] and g2 == {}


def test_resolved_before_first_flush_sends_nothing() -> None:
    ns = spec(group_wait="30s")
    g, _ = step(ns, {}, [alert()], 0)
    g, notes = step(ns, g, [], 30)
    assert notes == [] and g == {}


def test_groups_round_trip_json() -> None:
    ns = spec(group_wait="0s")
    g, _ = step(ns, {}, [alert(), alert(env="staging", severity="warning")], 5)
    assert {k: Group.from_json(v.to_json()) for k, v in g.items()} == g


def test_events_routed_at_once_and_silenced() -> None:
    ns = spec()
    ev = Alert(labels_of({"alertname": "DeploymentFailed", "env": "prod", "severity": "critical"}), (), 5, 5)
    assert sorted(n.receiver for n in event_notifications(ns, ev, [], 5)) == ["hook", "mail", "slack"]
    assert event_notifications(ns, ev, [Silence(1, parse_matchers("alertname=DeploymentFailed"), 0, 10)], 5) == []


def test_bad_matchers() -> None:
    for text in ("", "env", "env=", "env=~(", "1x=y"):
        try:
            parse_matchers(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} accepted")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=60))
def test_never_repeats_within_repeat_interval_and_resolves_once(script: list[tuple[int, bool]]) -> None:
    """Whatever alerts come and go: a receiver is told of an alert firing only when it is new to it or
    repeat_interval passed; every alert it was told about is reported resolved exactly once."""
    ns = spec(routes=[], group_by=["alertname"], group_wait="0s", group_interval="10s", repeat_interval="1h")
    g: dict[str, Group] = {}
    told: dict[str, float] = {}
    resolved: dict[str, int] = {}
    firing: dict[int, Alert] = {}
    t = 0.0
    for idx, on in script:
        t += 10
        if on:
            firing.setdefault(idx, alert(name=f"A{idx}", t=t))
        else:
            firing.pop(idx, None)
        g, notes = step(ns, g, list(firing.values()), t)
        for n in (n for n in notes if n.receiver == "slack"):
            for a in n.alerts:
                if a.status == "firing":
                    last = told.get(a.fingerprint)
                    assert last is None or (n.repeat and t - last >= 3600)
                    told[a.fingerprint] = t
                else:  # once per time it was told firing
                    assert told.pop(a.fingerprint, None) is not None
                    resolved[a.fingerprint] = resolved.get(a.fingerprint, 0) + 1
    for _ in range(3):
        t += 10
        g, notes = step(ns, g, [], t)
        for n in (n for n in notes if n.receiver == "slack"):
            for a in n.alerts:
                assert a.status == "resolved" and told.pop(a.fingerprint, None) is not None
    assert told == {} and g == {}
