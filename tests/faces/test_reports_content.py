"""Every content item issue 13 asks of a report, from records in the state store (both backends) through
``ReportService`` to the JSON and the HTML: deploys with outcomes, durations, rollbacks with reasons and
performers; availability against the SLO; error rate and latency percentiles with the 7-day trend; alerts
fired; incidents; backups and drills against the RPO and RTO (per source: the stalest decides)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from shipyard.control.reports import ReportService
from shipyard.engine.reports.html import render_report
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.store import Store

NOW = 1_796_120_000.0  # 2026-12-01 10:53 UTC
DAY = 86400


def _deploy(store: Store, kind: str, release: str, status: str, reason: str | None, at: float, took: float,
            performer: str) -> int:
    dep = store.begin_deployment("prod", kind=kind, release=release, previous_release="r0", strategy="canary",
                                 plan=[], started_at=at)
    store.add_audit(at, performer, kind, "prod", f"deployment {dep.id}", {"release": release})
    store.finish_deployment(dep.id, outcome=status, reason=reason, finished_at=at + took)
    return dep.id


def _minutes(day_offset: int, errors: int, p95: float) -> list[dict[str, Any]]:
    """Ten minutes of traffic on the day ``day_offset`` days before NOW's, 600 requests a minute."""
    base = int(NOW - day_offset * DAY) // 60 * 60 - 3600
    return [{"env": "prod", "release": "r1", "t": base + 60 * k, "requests": 600, "errors": errors, "p50": p95 / 3,
             "p95": p95, "p99": p95 * 2, "up": 1, "instances": 2, "health_failures": 0, "restarts": 0}
            for k in range(10)]


def _report(store: Store, tmp_path: Path) -> tuple[dict[str, Any], str, dict[str, int]]:
    """A 24 h report of prod from records of every kind; (document, HTML, the deployment ids by name)."""
    spec = parse_spec({
        "app": {"name": "svc", "run": "x", "health": {"path": "/h"}},
        "environments": {"prod": {"port": 8000, "backup": {
            "rto": "2m", "rpo": "6h", "repository": str(tmp_path / "repo"),
            "sources": [{"name": "db", "kind": "files", "path": "db"},
                        {"name": "uploads", "kind": "files", "path": "up"}]}}},
        "reports": {"slo": "99.5%"},
        "status_page": {"components": [{"name": "API", "env": "prod"}]},
    }, tmp_path / "shipyard.toml")
    ok = _deploy(store, "deploy", "r2", "succeeded", None, NOW - 5 * 3600, 75, "alice")
    bad = _deploy(store, "deploy", "r3", "rolled_back", "canary step 2: error_rate 4.1% > 1% over 60s",
                  NOW - 3 * 3600, 190, "bob")
    store.add_audit(NOW - 3 * 3600 - 60, "erin (approver)", "approve", "prod", f"deployment {bad}", {})
    auto = _deploy(store, "rollback", "r2", "succeeded", "watch: p99 > 800ms", NOW - 3600, 4, "the post-deploy watch")
    _deploy(store, "deploy", "r1", "succeeded", None, NOW - 3 * DAY, 60, "carol")  # outside the 24 h
    for k, (errors, p95) in enumerate([(0, 0.05), (3, 0.06), (0, 0.05), (12, 0.2), (0, 0.05), (1, 0.07), (6, 0.09)]):
        store.write_points("minute", _minutes(6 - k, errors, p95))
    for rule, at in (("HighErrorRate", NOW - 3 * 3600), ("HighErrorRate", NOW - 3000), ("SlowP99", NOW - 2 * DAY)):
        store.add_event("prod", "alert_firing", f"{rule} firing", data={"alertname": rule, "severity": "critical"},
                        at=at)
    store.open_incident("Elevated errors", "major", ["API"], "Looking", NOW - 3 * 3600, "dana")
    store.add_backup_run("prod", "db", status="ok", started_at=NOW - 1800, finished_at=NOW - 1700, backup_id="b2",
                         detail=None)
    store.add_backup_run("prod", "uploads", status="ok", started_at=NOW - 9 * 3600, finished_at=NOW - 9 * 3600 + 50,
                         backup_id="b1", detail=None)
    store.add_backup_run("prod", "uploads", status="failed", started_at=NOW - 3600, finished_at=NOW - 3590,
                         backup_id=None, detail=None)
    store.add_drill("prod", ok=True, started_at=NOW - 7200, detail={"sources": [
        {"source": "db", "rto_s": 95.0, "rpo_s": 1200.0}, {"source": "uploads", "rto_s": 40.0, "rpo_s": 3000.0}]})

    out = ReportService(store=store, clock=ManualClock(NOW), out=tmp_path / "reports").build(spec, "prod", "24h")
    return out["report"], out["html"], {"ok": ok, "bad": bad, "auto": auto}


def test_a_24h_report_has_every_item_of_the_issue(store: Store, tmp_path: Path) -> None:
    doc, html, ids = _report(store, tmp_path)
    ok, bad, auto = ids["ok"], ids["bad"], ids["auto"]

    deps = doc["deploys"]
    assert deps["count"] == 3 and deps["outcomes"] == {"succeeded": 2, "rolled_back": 1}
    assert [(d["id"], d["performer"], d["duration_s"]) for d in deps["list"]] == [
        (ok, "alice", 75.0), (bad, "bob", 190.0), (auto, "the post-deploy watch", 4.0)]
    assert [d["approved_by"] for d in deps["list"]] == [[], ["erin (approver)"], []]
    assert deps["duration_s"] == {"mean": round((75 + 190 + 4) / 3, 1), "max": 190.0}
    assert [(r["id"], r["reason"], r["performer"]) for r in deps["rollbacks"]] == [
        (bad, "canary step 2: error_rate 4.1% > 1% over 60s", "bob"), (auto, "watch: p99 > 800ms",
                                                                       "the post-deploy watch")]
    av = doc["availability"]
    assert (av["requests"], av["errors"], av["slo"]) == (6000, 60, 0.995)
    assert av["value"] == pytest.approx(0.99) and av["met"] is False and av["error_budget_used"] == pytest.approx(2.0)
    assert doc["traffic"]["error_rate"] == pytest.approx(0.01) and doc["traffic"]["p95"] == pytest.approx(0.09)
    assert doc["traffic"]["p99"] == pytest.approx(0.18) and doc["traffic"]["p50"] == pytest.approx(0.03)
    trend = doc["trend"]
    assert len(trend) == 7 and [d["requests"] for d in trend] == [6000] * 7
    assert [round(d["error_rate"] * 600) for d in trend] == [0, 3, 0, 12, 0, 1, 6]
    assert [d["p95"] for d in trend] == pytest.approx([0.05, 0.06, 0.05, 0.2, 0.05, 0.07, 0.09])
    assert doc["alerts"]["fired"] == 2 and doc["alerts"]["by_rule"] == {"HighErrorRate": 2}
    assert [i["title"] for i in doc["incidents"]] == ["Elevated errors"]
    bk = doc["backups"]
    assert [(s["source"], s["rpo_met"]) for s in bk["sources"]] == [("db", True), ("uploads", False)]
    assert (bk["runs"], bk["failed"], bk["rpo_met"]) == (3, 1, False), "the stale source misses the RPO"
    assert bk["newest_age_s"] == pytest.approx(9 * 3600 - 50)
    assert (bk["last_drill_s"], bk["rto_s"], bk["rto_met"]) == (95.0, 120.0, True)
    assert (bk["last_drill_rpo_s"], bk["drill_rpo_met"]) == (3000.0, True)

    for text in ("alice", "bob", "the post-deploy watch", "error_rate 4.1% &gt; 1% over 60s", "watch: p99 &gt; 800ms",
                 "99.000 %", "SLO 99.50 %", "HighErrorRate: fired 2×", "Elevated errors", "RPO 6.0 h: missed",
                 "RTO 2.0 min: met", "<td>uploads</td>", "approved by erin (approver)", "7-day trend", "200 ms"):
        assert text in html, text
    assert html.count("<tr><td>2026-") == 7, "one trend row per day"
    assert render_report(doc) == html


ARTIFACTS = Path(os.environ.get("SHIPYARD_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")


def test_the_full_report_renders_in_chromium(tmp_path: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    from shipyard.primitives.store import open_store

    store = open_store(None, tmp_path / ".shipyard")
    try:
        _, html, _ = _report(store, tmp_path)
    finally:
        store.close()
    page_file = tmp_path / "report.html"
    page_file.write_text(html)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 960, "height": 900})
            page.goto(page_file.as_uri())
            assert page.locator("svg").count() == 3 and page.locator("p.rollback").count() == 2
            assert "uploads" in page.locator("table").last.inner_text()
            page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "report-full.png").stat().st_size > 10_000
