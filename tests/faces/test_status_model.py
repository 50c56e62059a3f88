"""The status page's pure parts and its store: states, uptime without maintenance, Statuspage's fields,
incident and maintenance records on both backends."""

from __future__ import annotations

import json
import re
from typing import Any

import feedparser
import pytest

from shipyard.control.statuspage.feeds import atom, summary
from shipyard.control.statuspage.html import render_html
from shipyard.control.statuspage.model import DAY, ComponentInputs, PageInputs, build_page, day_counts
from shipyard.primitives.spec.faces import StatusPageSpec
from shipyard.primitives.store import Store

NOW = 1_780_000_000.0
SPEC = StatusPageSpec.model_validate({"title": "Tarot status", "components": [
    {"name": "API", "env": "prod"}, {"name": "Website", "check": {"url": "http://127.0.0.1:1/"}}]})


def test_incidents_and_maintenance_round_trip(store: Store) -> None:
    iid = store.open_incident("Errors", "major", ["API"], "We are looking", NOW, "alice")
    store.update_incident(iid, "identified", "Bad cache node", NOW + 60, "bob")
    assert store.incidents(unresolved=True)[0].status == "identified"
    store.update_incident(iid, "resolved", "Fixed", NOW + 120, "bob")
    rec = store.incident(iid)
    assert (rec.status, rec.resolved_at, rec.components) == ("resolved", NOW + 120, ("API",))
    assert [u.status for u in rec.updates] == ["resolved", "identified", "investigating"]
    assert store.incidents(unresolved=True) == []
    mid = store.add_maintenance("prod", "DB upgrade", NOW + DAY, NOW + DAY + 7200, True, ["10.0.0.0/8"], NOW, "alice")
    store.mark_maintenance(mid, notified=["ahead"], switched=True)
    m = store.maintenances(since=NOW)[0]
    assert (m.notified, m.switched, m.allow) == (("ahead",), True, ("10.0.0.0/8",))
    store.mark_maintenance(mid, cancelled_at=NOW + 5)
    assert store.maintenances(since=NOW) == []
    for ok in (True, False, True):
        store.add_check_result("Website", 600, ok)
    assert store.check_minutes("Website", 0) == [(600, 3, 2)]


def test_uptime_leaves_maintenance_out_and_states_follow_incidents() -> None:
    today = int(NOW // DAY) * DAY
    # Yesterday: 1000 requests a minute for 10 minutes; 2 of those minutes inside maintenance all failed.
    minutes = [(today - DAY + 60 * k, 1000.0, 1000.0 if k in (3, 4) else 1.0) for k in range(10)]
    window = [(today - DAY + 180, today - DAY + 300)]
    days = day_counts(minutes, window)
    assert len(days) == 1 and days[0].maintenance
    assert days[0].uptime == pytest.approx(1 - 8 / 8000)
    from shipyard.primitives.store.incidents import IncidentRec

    inc = IncidentRec(7, "Errors", "major", "investigating", ("API",), NOW - 60, NOW - 60, None, "alice")
    page = build_page(PageInputs(SPEC, NOW, [ComponentInputs("API", "prod", days),
                                             ComponentInputs("Website", None, [], degraded=True)], [inc], []))
    states = {c.name: c.status for c in page.components}
    assert states == {"API": "partial_outage", "Website": "degraded_performance"}
    assert page.indicator == "major" and page.description == "Partial System Outage"
    api = page.components[0]
    assert len(api.days) == 90 and api.days[-2][1] == pytest.approx(days[0].uptime)
    assert api.days[0][1] is None, "days without data are 'no data', not 100 %"


def test_summary_json_has_statuspages_fields_and_the_feed_parses() -> None:
    from shipyard.primitives.store.incidents import IncidentRec, IncidentUpdateRec, MaintenanceRec

    inc = IncidentRec(3, "Slow readings", "minor", "identified", ("API",), NOW - 600, NOW - 60, None, "alice",
                      (IncidentUpdateRec("identified", "Bad node", NOW - 60),
                       IncidentUpdateRec("investigating", "Looking", NOW - 600)))
    maint = MaintenanceRec(1, "prod", "Database upgrade", NOW + 3600, NOW + 7200, True, (), (), False, None,
                           NOW - 100, "alice")
    page = build_page(PageInputs(SPEC, NOW, [ComponentInputs("API", "prod", []),
                                             ComponentInputs("Website", None, [])], [inc], [maint]))
    doc: Any = json.loads(json.dumps(summary(page)))
    assert set(doc) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert {"id", "name", "url", "time_zone", "updated_at"} <= set(doc["page"])
    assert {"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
            "group_id", "page_id", "group", "only_show_if_degraded"} <= set(doc["components"][0])
    incident = doc["incidents"][0]
    assert {"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
            "shortlink", "started_at", "page_id", "incident_updates", "components"} <= set(incident)
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]
    assert {"scheduled_for", "scheduled_until"} <= set(doc["scheduled_maintenances"][0])
    assert doc["scheduled_maintenances"][0]["status"] == "scheduled"
    assert doc["scheduled_maintenances"][0]["components"][0]["name"] == "API"
    assert doc["status"] == {"indicator": "minor", "description": "Minor Service Outage"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", incident[k]) for k in ("created_at", "updated_at"))
    feed = feedparser.parse(atom(page))
    assert not feed.bozo, feed.bozo_exception
    titles = [e.title for e in feed.entries]
    assert "Slow readings" in titles and "Scheduled maintenance: Database upgrade" in titles
    assert "Bad node" in feed.entries[titles.index("Slow readings")].summary
    html = render_html(page)
    assert "Slow readings" in html and "Database upgrade" in html and "<script" not in html
    assert "prod" not in html.replace("products", ""), "environment names are internal"
