"""Metric points and alert states on both backends."""

from __future__ import annotations

from shipyard.primitives.store import Store


def _p(env: str, rel: str, t: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"env": env, "release": rel, "t": t, "requests": 10, "errors": 1, "p50": 0.01,
                               "p95": 0.2, "p99": 0.5, "cpu": 0.25, "rss": 50_000_000, "memory": 0.01,
                               "up": 2, "instances": 2, "health_failures": 0, "restarts": 0,
                               "hist": {100: 7, 140: 3}}
    return {**base, **kw}


def test_points_round_trip_upsert_and_prune(store: Store) -> None:
    store.write_points("raw", [_p("prod", "r1", 0), _p("prod", "r1", 10), _p("prod", "r2", 10),
                               _p("staging", "r1", 10)])
    store.write_points("raw", [_p("prod", "r1", 10, requests=99, hist=None)])  # the newer write wins
    rows = store.read_points("raw", "prod", 0)
    assert [(r["release"], r["t"]) for r in rows] == [("r1", 0), ("r1", 10), ("r2", 10)]
    assert rows[0]["hist"] == {100: 7, 140: 3} and rows[0]["rss"] == 50_000_000
    assert rows[1]["requests"] == 99 and rows[1]["hist"] is None
    assert store.read_points("raw", "prod", 0, until=10) == rows[:1]
    assert store.newest_point_t("raw", "prod") == 10 and store.newest_point_t("minute") is None
    assert sorted(store.point_envs("raw")) == ["prod", "staging"]
    assert store.prune_points("raw", before=10) == 1
    assert len(store.read_points("raw", "prod", 0)) == 2


def test_alert_states_saved_with_their_events(store: Store) -> None:
    s = {"rule": "HighErrorRate", "env": "prod", "state": "firing", "active_since": 1.0, "fired_at": 61.0,
         "value": 0.2, "changed_at": 61.0}
    store.save_alert_states([s], [{"env": "prod", "kind": "alert_firing", "message": "m", "data": {"x": 1},
                                   "at": 61.0}])
    assert store.alert_states() == [s]
    store.save_alert_states([{**s, "state": "resolved", "changed_at": 99.0}])
    assert store.alert_states()[0]["state"] == "resolved"
    events = store.events_since(60.0, env="prod")
    assert [(e.kind, e.data) for e in events] == [("alert_firing", {"x": 1})]
    assert store.events_since(62.0) == []
    store.delete_alert_states([("HighErrorRate", "prod")])
    assert store.alert_states() == []


def test_scrape_aggregates(store: Store) -> None:
    store.add_backup_run("prod", "db", status="ok", started_at=1.0, finished_at=2.0, backup_id="a", detail=None)
    store.add_backup_run("prod", "db", status="ok", started_at=5.0, finished_at=None, backup_id="b", detail=None)
    store.add_backup_run("prod", "db", status="failed", started_at=9.0, finished_at=9.5, backup_id=None, detail=None)
    store.add_backup_run("prod", "*", status="ok", started_at=9.0, finished_at=9.5, backup_id=None, detail=None)
    assert store.backup_success_times() == {("prod", "db"): 5.0}
    assert store.deployment_summary() == []
