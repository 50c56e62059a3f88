"""The alert evaluator over the recorded history, on a test clock: fires after `for`, resolves after
`keep_firing_for`, and a restart (a new evaluator on the same database) neither loses nor repeats it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shipyard.control.alerts import Evaluator
from shipyard.engine.alerting.values import BackupFacts, value_of
from shipyard.primitives.spec.alerting import parse_expr

from .test_history_day import SPEC, make

RULES = """
[[alerts]]
name = "Errors"
expr = "error_rate > 5%"
for = "1m"
keep_firing_for = "30s"
severity = "critical"
"""


def drive(clock, rec, ev, seconds: int) -> list[tuple[float, str, str]]:  # type: ignore[no-untyped-def]
    seen = []

    async def go() -> None:
        for _ in range(seconds // 5):
            clock.advance(5)
            if int(clock.time()) % 10 == 0:
                await rec.tick()
            for rule, _state, change in ev.evaluate():
                seen.append((clock.time(), rule.name, change))

    asyncio.run(go())
    return seen


def test_fires_resolves_and_survives_a_restart(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES)
    ev = Evaluator(store=store, clock=clock, specs=watch)
    assert drive(clock, rec, ev, 300) == []  # 1 % errors: nothing
    assert {v.rule.name for v in ev.view("prod")} >= {"Errors", "HighErrorRate", "InstanceDown"}

    router.error_share = 0.3
    fault = clock.time()
    seen = drive(clock, rec, ev, 120)
    changes = [(c, n) for _, n, c in seen if n == "Errors"]
    assert changes == [("pending", "Errors"), ("firing", "Errors")], seen
    fired = next(t for t, n, c in seen if c == "firing" and n == "Errors")
    assert fired - fault <= 60 + 10 + 10, "within for + one bucket + one evaluation"

    # Restart: a new evaluator on the same database carries on — no second "firing".
    ev2 = Evaluator(store=store, clock=clock, specs=watch)
    assert [s for s in drive(clock, rec, ev2, 60) if s[1] == "Errors"] == []
    assert next(v for v in ev2.view("prod") if v.rule.name == "Errors").state.state == "firing"

    router.error_share = 0.0
    healed = clock.time()
    seen = drive(clock, rec, ev2, 180)
    assert [(n, c) for _, n, c in seen if n == "Errors"] == [("Errors", "resolved")]
    resolved = next(t for t, n, c in seen if n == "Errors")
    # The last minute's window must clear (60 s + a bucket), then keep_firing_for (30 s) pass.
    assert 30 <= resolved - healed <= 60 + 10 + 30 + 5

    events = [e for e in store.events_since(0, "prod") if e.data and e.data.get("alertname") == "Errors"]
    assert [e.kind for e in events] == ["alert_pending", "alert_firing", "alert_resolved"]
    assert "Errors firing" in events[1].message and "%" in events[1].message
    store.close()


def test_removed_rule_is_forgotten(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES)
    ev = Evaluator(store=store, clock=clock, specs=watch)
    drive(clock, rec, ev, 20)
    assert any(d["rule"] == "Errors" for d in store.alert_states())
    (tmp_path / "shipyard.toml").write_text(SPEC + "\n[metrics]\ndefault_alerts = false\n")
    drive(clock, rec, ev, 10)
    assert store.alert_states() == [] and ev.view() == []
    store.close()


def test_backup_series() -> None:
    facts = BackupFacts({"db": 1000.0, "files": None}, {"db": False, "files": True}, drill_missed=True)
    assert value_of(parse_expr('backup_age{source="db"} > 26h'), {}, facts, 1000.0 + 7200) == 7200
    assert value_of(parse_expr("backup_age > 26h"), {}, facts, 5000.0) == float("inf")
    assert value_of(parse_expr("backup_failed > 0"), {}, facts, 0) == 1
    assert value_of(parse_expr('backup_failed{source="db"} > 0'), {}, facts, 0) == 0
    assert value_of(parse_expr("drill_missed > 0"), {}, facts, 0) == 1
    assert value_of(parse_expr("drill_missed > 0"), {}, None, 0) is None


def test_backup_facts_from_the_store(tmp_path: Path) -> None:
    store, clock, _, _, watch = make(tmp_path)
    store.add_backup_run("prod", "db", status="ok", started_at=10.0, finished_at=20.0, backup_id="b1", detail=None)
    store.add_backup_run("prod", "*", status="failed", started_at=30.0, finished_at=31.0, backup_id=None, detail=None)
    ev = Evaluator(store=store, clock=clock, specs=watch)
    facts = ev._backups("prod")
    assert facts.last_success == {"db": 20.0} and facts.failed == {"db": False, "*": True}
    store.add_backup_run("prod", "db", status="ok", started_at=40.0, finished_at=50.0, backup_id="b2", detail=None)
    assert ev._backups("prod").failed == {"db": False, "*": False}
    store.close()
