"""The dashboard's pure parts: the live canary document, the time to the next step, the chart columns,
the failing conditions of a rollback, and the page frame's escaping."""

from __future__ import annotations

from typing import Any

from shipyard.control.dashboard.charts_page import chart_series
from shipyard.control.dashboard.history_page import failing_conditions
from shipyard.control.dashboard.layout import data_block
from shipyard.control.dashboard.live import StepClock, live_env, next_step
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.store.records import DeploymentRec, StepRec


def _status(step: dict[str, Any] | None, decision: dict[str, Any] | None = None, paused: bool = False) -> dict[str, Any]:
    canary = None if step is None else {"release": "r2", "stable": "r1", "weight": step["weight"], "paused": paused,
                                        "paused_because": "paused by the operator" if paused else None,
                                        "step": step, "total_steps": 5, "decision": decision}
    return {"env": "staging", "release": "r1", "weights": {"r1": 80, "r2": 20}, "canary": canary, "watch": None,
            "deployment": {"id": 7, "kind": "deploy", "release": "r2"}, "last_deployment": None}


PLAN = [{"index": 0, "kind": "weight", "duration": None}, {"index": 1, "kind": "bake", "duration": 30.0}]
VERDICT = {"outcome": "inconclusive", "reason": "too little traffic", "window": [100, 130], "canary": "r2",
           "stable": "r1", "checks": [{"name": "errors", "outcome": "pass", "canary_value": 0.01, "stable_value": 0.0,
                                       "p_value": 0.2, "tolerance": 0.01, "method": "fisher", "reason": "ok",
                                       "canary_n": 50, "stable_n": 200}]}


def test_the_live_document_counts_down_to_the_next_step() -> None:
    clock = ManualClock()
    steps = StepClock(clock)
    bake = {"index": 1, "kind": "bake", "weight": 20, "description": "bake 30s at 20%"}
    dep = DeploymentRec(7, "staging", "deploy", "r2", "r1", "canary", "running", None, 0.0, None,
                        [{"kind": "start", "description": "start r2"}, {"kind": "canary", "description": "bake"}], None)
    done = [StepRec(1, 7, 0, "start", "succeeded", 0.0, 1.5, None)]
    doc = live_env(_status(bake, {"action": "wait", "reason": "judging", "verdict": VERDICT, "firing": []}),
                   dep, done, [{"env": "prod", "deployment": 3}], PLAN, steps)
    c = doc["canary"]
    assert c["step"]["number"] == 2 and c["step"]["of"] == 5 and c["weight"] == 20
    assert c["next_step"]["in_s"] == 30.0
    assert c["verdict"]["checks"][0]["p_value"] == 0.2 and c["verdict"]["window"] == [100, 130]
    assert [s["status"] for s in doc["deployment"]["steps"]] == ["succeeded", "pending"]
    assert doc["waiting"] == [], "another environment's approval is not shown here"
    clock.advance(12)
    assert live_env(_status(bake), dep, done, [], PLAN, steps)["canary"]["next_step"]["in_s"] == 18.0
    clock.advance(30)
    late = live_env(_status(bake), dep, done, [], PLAN, steps)["canary"]["next_step"]
    assert late["in_s"] == 0.0 and "passing judgement" in late["text"]
    # A new step starts its own count.
    gate = {"index": 2, "kind": "gate", "weight": 20, "description": "manual gate"}
    assert live_env(_status(gate), dep, done, [], PLAN, steps)["canary"]["step"]["elapsed_s"] == 0.0
    assert live_env(_status(None), None, [], [], [], steps)["canary"] is None


def test_next_step_says_why_it_does_not_come() -> None:
    assert next_step("gate", None, 5, False, {})["in_s"] is None
    assert "resume" in next_step("bake", 30, 5, True, {})["text"]
    assert next_step("weight", None, 0, False, {})["in_s"] == 0.0


def test_chart_columns_align_releases_on_one_axis() -> None:
    metrics = {"step": 60, "resolution": "raw", "since": 0, "until": 120,
               "total": [{"t": 0, "rps": 2.0, "error_rate": 0.5, "requests": 120, "errors": 60},
                         {"t": 60, "rps": 1.0, "error_rate": None, "requests": 60, "errors": 0}],
               "releases": {"r1": [{"t": 0, "rps": 2.0, "error_rate": 0.5, "p50": 0.01, "p95": 0.02, "p99": 0.05,
                                    "requests": 120}],
                            "r2": [{"t": 60, "rps": 1.0, "error_rate": None, "p50": None, "p95": None, "p99": None,
                                    "requests": 60}]}}
    s = chart_series(metrics, [{"t": 30, "label": "deploy r2 succeeded", "outcome": "succeeded"}])
    assert s["x"] == [0, 60] and s["total"]["error_rate"] == [50.0, None]
    r1 = next(r for r in s["releases"] if r["release"] == "r1")
    assert r1["p95"] == [20.0, None] and r1["rps"] == [2.0, None]
    assert s["requests"] == 180 and s["marks"][0]["t"] == 30


def test_failing_conditions_of_a_canary_rollback_and_a_watch() -> None:
    row = {"rollback": {"step": "canary", "canary": {"failing": [
        {"condition": "judgement: errors", "value": {"canary": 0.3, "stable": 0.0}, "window": [10, 40],
         "reason": "canary errors 30% vs 0%"}]}},
        "trigger": {"watch": {"firing": [{"describe": "error_rate > 5%", "value": 0.2, "reason": "20% > 5%"}]}}}
    lines = failing_conditions(row)
    assert lines[0].startswith("judgement: errors: {\"canary\": 0.3") and "over 30s" in lines[0]
    assert lines[1].startswith("post-deploy watch: error_rate > 5% = 0.2")
    assert failing_conditions({"rollback": None}) == []


def test_a_data_block_cannot_be_closed_by_its_text() -> None:
    block = data_block("d", {"x": "</script><script>alert(1)</script>&"})
    assert block.count("</script>") == 1 and "\\u003c/script\\u003e" in block and "\\u0026" in block


def test_drills_are_shown_against_the_rto_and_rpo() -> None:
    from shipyard.control.dashboard.ops_pages import backups_page
    from shipyard.primitives.spec.backup import BackupSpec
    from shipyard.primitives.store.records import DrillRec

    spec = BackupSpec.model_validate({"repository": "/tmp/repo", "rto": "10m", "rpo": "1h"})
    drills = [DrillRec(1, "prod", False, 1_700_000_000.0, {"sources": [
        {"source": "db", "ok": False, "rto_s": 900.0, "rpo_s": 60.0, "checks": [{"name": "rto", "ok": False}]}]})]
    html = backups_page("svc", "alice", "viewer", "c", ["prod"], "prod", spec, None, drills, "")
    row = html.split('<tr class="drill"')[1]
    assert 'data-ok="false"' in row and "15.0 min &gt; 10.0 min" in row and "60.0s ≤ 60.0 min" in row
    assert "RTO 10.0 min" in html and "RPO 60.0 min" in html


def test_the_overview_keeps_the_last_hour_and_reads_only_what_is_new(tmp_path: Any) -> None:
    from shipyard.control.dashboard.traffic import LastHour
    from shipyard.primitives.metrics.histogram import bucket_index
    from shipyard.primitives.store import open_store

    store = open_store(None, tmp_path / ".shipyard")
    now = 1_700_000_000

    def point(t: int, requests: int, errors: int, latency: float) -> dict[str, Any]:
        return {"env": "prod", "release": "r1", "t": t, "requests": requests, "errors": errors,
                "hist": {bucket_index(latency): requests}, "up": 1, "instances": 1, "health_failures": 0, "restarts": 0}

    try:
        store.write_points("raw", [point(now - 3590, 100, 10, 0.01), point(now - 20, 300, 0, 0.5)])
        hour = LastHour(store, full_every=300)
        first = hour.figures("prod", now)
        assert first is not None and first["rps"] == 400 / 3600 and first["error_rate"] == 10 / 400
        assert hour.figures("prod", now + 5) is first and hour.reads == {"full": 1, "newer": 0}, "same bucket"
        store.write_points("raw", [point(now - 10, 3600, 0, 0.5)])
        later = hour.figures("prod", now + 20)  # the oldest point has left the hour; the new one is read
        assert later is not None and later["rps"] == 3900 / 3600 and later["error_rate"] == 0
        assert later["p95"] is not None and later["p95"] > 0.4
        assert hour.reads == {"full": 1, "newer": 1}
        assert hour.latest("prod", now + 330) is later and hour.reads["full"] == 1, "a page: the last refresh's"
        assert hour.latest("staging", now) is None and hour.reads["full"] == 2, "never read: read now"
        hour.refresh(["prod"], now + 340)
        assert hour.reads == {"full": 3, "newer": 1}
        assert hour.figures("prod", now + 3700) is None and hour.reads["full"] == 4, "whole hour re-read, now empty"
    finally:
        store.close()


def test_a_rule_shows_its_value_and_its_summary_only_while_it_is_active() -> None:
    from shipyard.control.dashboard.ops_pages import alerts_page

    def rule(name: str, expr: str, state: str, value: float | None, summary: str) -> dict[str, Any]:
        return {"env": "prod", "name": name, "expr": expr, "state": state, "severity": "critical", "value": value,
                "summary": summary, "since": None}

    html = alerts_page("svc", "alice", "viewer", "c", ["prod"], "prod", [
        rule("InstanceDown", "up < 1", "inactive", 1.0, "prod: no instance is up"),
        rule("HighErrorRate", "error_rate[1m] > 5%", "firing", 0.2, "prod: 20% of requests fail (over 5% for 5m)"),
        rule("BackupTooOld", "backup_age > 26h", "inactive", None, "prod: the newest good backup is no data old")], [])
    rows = {r.split('"')[0]: r for r in html.split('<tr class="rule" data-name="')[1:]}
    assert "no instance is up" not in rows["InstanceDown"] and '<td class="value">1</td>' in rows["InstanceDown"]
    assert '<td class="value">20%</td>' in rows["HighErrorRate"] and "20% of requests fail" in rows["HighErrorRate"]
    assert "no data</span>" in rows["BackupTooOld"] and "no data old" not in rows["BackupTooOld"]
    assert html.index("HighErrorRate") < html.index("InstanceDown"), "firing first"
