"""Reports: when scheduled ones are due (pure, on fixed times), what the builder counts, bad [status_page]
and [reports] input named by key path."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shipyard.engine.reports.build import DeployFact, MinuteFact, ReportFacts, build_report
from shipyard.engine.reports.schedule import due_reports
from shipyard.errors import ConfigError
from shipyard.primitives.spec.faces import ReportsSpec
from shipyard.primitives.spec.loading import parse_spec

SEOUL = ZoneInfo("Asia/Seoul")


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).timestamp()


def test_daily_weekly_and_after_deploy_reports_fall_due_once() -> None:
    spec = ReportsSpec(daily="0 9 * * *", weekly="0 9 * * mon", after_deploy=3600)
    # Monday 2026-11-30 09:00 in Seoul: both cron reports fire.
    due = due_reports(spec, since=_at("2026-11-30T08:59:30"), now=_at("2026-11-30T09:00:10"), tz="Asia/Seoul",
                      finished_deploys=[], sent=frozenset())
    assert [(d.kind, d.period) for d in due] == [("daily", "24h"), ("weekly", "7d")]
    sent = frozenset(d.key for d in due)
    assert due_reports(spec, since=_at("2026-11-30T08:59:30"), now=_at("2026-11-30T09:00:40"), tz="Asia/Seoul",
                       finished_deploys=[], sent=sent) == []
    # Tuesday: the daily alone; 08:59 is not due yet.
    assert due_reports(spec, since=_at("2026-12-01T08:58:00"), now=_at("2026-12-01T08:59:59"), tz="Asia/Seoul",
                       finished_deploys=[], sent=frozenset()) == []
    finished = _at("2026-12-01T10:00:00")
    early = due_reports(spec, since=finished, now=finished + 3599, tz="Asia/Seoul",
                        finished_deploys=[(7, finished)], sent=frozenset())
    assert early == []
    late = due_reports(spec, since=finished + 3599, now=finished + 3600, tz="Asia/Seoul",
                       finished_deploys=[(7, finished)], sent=frozenset())
    assert [(d.kind, d.period, d.key) for d in late] == [("after_deploy", "1h", "after_deploy@7")]


def test_the_report_counts_deploys_availability_and_the_trend() -> None:
    now = 1_780_000_000.0
    minutes = [MinuteFact(int(now) // 60 * 60 - 60 * k, 1000, 2 if k < 30 else 0, 0.01, 0.05, 0.2)
               for k in range(1, 3 * 1440)]
    deploys = [DeployFact(1, "deploy", "r1", None, "canary", "rolled_back", "error_rate > 2%", now - 1800,
                          now - 1700, "alice"),
               DeployFact(2, "deploy", "r2", None, "canary", "succeeded", None, now - 600, now - 540, "bob"),
               DeployFact(0, "deploy", "r0", None, "canary", "succeeded", None, now - 5 * 86400, now - 5 * 86400, "x")]
    doc = build_report(ReportFacts(env="prod", period="1h", now=now, slo=0.999, minutes=minutes, deploys=deploys,
                                   alerts=[{"rule": "HighErrorRate", "kind": "alert_firing", "at": now - 100}],
                                   incidents=[], drills=[{"ok": True, "started_at": now - 7200, "duration_s": 90.0}],
                                   backups=[{"source": "db", "status": "ok", "started_at": now - 900,
                                             "finished_at": now - 840},
                                            {"source": "db", "status": "failed", "started_at": now - 300,
                                             "finished_at": now - 290}],
                                   rto=60.0, rpo=3600.0))
    assert doc["deploys"]["count"] == 2 and doc["deploys"]["outcomes"] == {"rolled_back": 1, "succeeded": 1}
    assert doc["deploys"]["rollbacks"] == [{"id": 1, "release": "r1", "reason": "error_rate > 2%",
                                            "performer": "alice", "at": now - 1800}]
    av = doc["availability"]
    assert av["requests"] == 59 * 1000 and av["errors"] == 29 * 2
    assert av["value"] == pytest.approx(1 - 58 / 59000) and av["met"] is True
    assert doc["alerts"]["by_rule"] == {"HighErrorRate": 1}
    assert len(doc["trend"]) == 7 and doc["trend"][-1]["requests"] > 0 and doc["trend"][0]["requests"] == 0
    bk = doc["backups"]
    assert (bk["runs"], bk["failed"], bk["newest_age_s"], bk["rpo_met"]) == (2, 1, 840, True)
    assert (bk["drills"], bk["last_drill_s"], bk["rto_met"]) == (0, 90.0, False), "the drill is older than 1 h"
    assert len(doc["series"]) == 60 and doc["traffic"]["p95"] == pytest.approx(0.05)


@pytest.mark.parametrize(("extra", "problem"), [
    ({"status_page": {"components": [{"name": "API", "env": "nowhere"}]}},
     "status_page.components[0].env: unknown environment 'nowhere'"),
    ({"status_page": {"components": [{"name": "API"}]}}, "status_page.components[0]: "),
    ({"status_page": {"listen": "8088"}}, "status_page.listen: "),
    ({"status_page": {"components": [{"name": "W", "check": {"url": "http://x/", "conditions": ["body ~ ok"]}}]}},
     "status_page.components[0].check.conditions[0]: "),
    ({"reports": {"daily": "every day"}}, "reports.daily: "),
])
def test_bad_faces_config_names_its_key(extra: dict[str, object], problem: str) -> None:
    data = {"app": {"name": "svc", "run": "x", "health": {"path": "/h"}}, "environments": {"prod": {"port": 8000}},
            **extra}
    with pytest.raises(ConfigError) as err:
        parse_spec(data, Path("shipyard.toml"))
    assert any(line.startswith(problem) for line in err.value.problems), err.value.problems
