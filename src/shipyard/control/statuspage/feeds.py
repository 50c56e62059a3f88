"""The status page's machine-readable files: Statuspage-compatible ``/api/v2/summary.json`` (and
``status.json``) and the Atom feed ``/history.atom`` of incidents and maintenance. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from shipyard.control.statuspage.model import Page, component_id, maintenance_status
from shipyard.primitives.spec.faces import StatusPageSpec
from shipyard.primitives.store.incidents import IncidentRec, MaintenanceRec

PAGE_ID = "shipyard"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


WILDCARDS = ("0.0.0.0", "::", "")


def page_url(spec: StatusPageSpec, hostname: str) -> str:
    """The page's public address, without a trailing slash: ``[status_page] url``, else the listen address
    (a wildcard address names this machine by ``hostname``)."""
    if spec.url:
        return spec.url.rstrip("/")
    host, port = spec.address
    if host in WILDCARDS:
        host = hostname
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def summary(page: Page, url: str = "") -> dict[str, Any]:
    """Statuspage's summary.json: page, components, incidents (unresolved), scheduled_maintenances, status."""
    updated = iso(page.now)
    return {
        "page": {"id": PAGE_ID, "name": page.title, "url": url, "time_zone": "Etc/UTC", "updated_at": updated},
        "components": [
            {"id": c.id, "name": c.name, "status": c.status, "created_at": updated, "updated_at": updated,
             "position": n + 1, "description": None, "showcase": True, "start_date": None, "group_id": None,
             "page_id": PAGE_ID, "group": False, "only_show_if_degraded": False}
            for n, c in enumerate(page.components)],
        "incidents": [_incident(i, page) for i in page.unresolved],
        "scheduled_maintenances": [_maintenance(m, page) for m in page.maintenances],
        "status": {"indicator": page.indicator, "description": page.description},
    }


def status(page: Page, url: str = "") -> dict[str, Any]:
    doc = summary(page, url)
    return {"page": doc["page"], "status": doc["status"]}


def _components(names: tuple[str, ...] | list[str], page: Page) -> list[dict[str, Any]]:
    status = {c.name: c.status for c in page.components}
    return [{"id": page.component_ids.get(n, component_id(n)), "name": n, "status": status.get(n, "operational"),
             "page_id": PAGE_ID} for n in names if n in status]


def _incident(i: IncidentRec, page: Page) -> dict[str, Any]:
    monitoring = next((u.at for u in reversed(i.updates) if u.status == "monitoring"), None)
    return {
        "id": str(i.id), "name": i.title, "status": i.status, "impact": i.impact,
        "created_at": iso(i.created_at), "updated_at": iso(i.updated_at), "started_at": iso(i.created_at),
        "monitoring_at": iso(monitoring) if monitoring else None,
        "resolved_at": iso(i.resolved_at) if i.resolved_at else None,
        "shortlink": "", "page_id": PAGE_ID,
        "incident_updates": [
            {"id": f"{i.id}-{len(i.updates) - n}", "incident_id": str(i.id), "status": u.status, "body": u.body,
             "created_at": iso(u.at), "updated_at": iso(u.at), "display_at": iso(u.at),
             "affected_components": None}
            for n, u in enumerate(i.updates)],
        "components": _components(list(i.components), page),
    }


def _maintenance(m: MaintenanceRec, page: Page) -> dict[str, Any]:
    names = [c.name for c in page.components if c.env == m.env]
    state = maintenance_status(m, page.now)
    return {
        "id": f"m{m.id}", "name": m.message, "status": state, "impact": "maintenance",
        "created_at": iso(m.created_at), "updated_at": iso(page.now), "started_at": iso(m.starts_at),
        "scheduled_for": iso(m.starts_at), "scheduled_until": iso(m.ends_at),
        "monitoring_at": None, "resolved_at": None, "shortlink": "", "page_id": PAGE_ID,
        "incident_updates": [{"id": f"m{m.id}-1", "incident_id": f"m{m.id}", "status": state, "body": m.message,
                              "created_at": iso(m.created_at), "updated_at": iso(m.created_at),
                              "display_at": iso(m.created_at), "affected_components": None}],
        "components": _components(names, page),
    }


def atom(page: Page, url: str = "") -> str:
    """An Atom feed: one entry per incident (its updates, newest first) and per scheduled maintenance."""
    entries: list[tuple[float, str]] = []
    for i in page.incidents:
        body = "".join(f"<p><strong>{escape(u.status.capitalize())}</strong> ({iso(u.at)}) - {escape(u.body)}</p>"
                       for u in i.updates)
        affected = ", ".join(i.components)
        if affected:
            body += f"<p>This incident affected: {escape(affected)}.</p>"
        entries.append((i.updated_at, _entry(f"tag:shipyard,incident:{i.id}", i.title, i.created_at, i.updated_at,
                                             body, f"{url}/#incident-{i.id}")))
    for m in page.maintenances:
        body = (f"<p><strong>{escape(maintenance_status(m, page.now).replace('_', ' ').capitalize())}</strong> - "
                f"{escape(m.message)}</p><p>Scheduled for {iso(m.starts_at)} until {iso(m.ends_at)}.</p>")
        entries.append((m.created_at, _entry(f"tag:shipyard,maintenance:{m.id}", f"Scheduled maintenance: {m.message}",
                                             m.created_at, m.created_at, body, f"{url}/#maintenance-{m.id}")))
    entries.sort(key=lambda e: e[0], reverse=True)
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en-US\">\n"
            f"  <id>tag:shipyard,status:{escape(page.title)}</id>\n"
            f"  <link rel=\"alternate\" type=\"text/html\" href=\"{escape(url)}/\"/>\n"
            f"  <link rel=\"self\" type=\"application/atom+xml\" href=\"{escape(url)}/history.atom\"/>\n"
            f"  <title>{escape(page.title)} - Incident History</title>\n"
            f"  <updated>{iso(max([e[0] for e in entries], default=page.now))}</updated>\n"
            + "".join(e[1] for e in entries) + "</feed>\n")


def _entry(entry_id: str, title: str, published: float, updated: float, html_body: str, link: str) -> str:
    return ("  <entry>\n"
            f"    <id>{escape(entry_id)}</id>\n"
            f"    <published>{iso(published)}</published>\n"
            f"    <updated>{iso(updated)}</updated>\n"
            f"    <link rel=\"alternate\" type=\"text/html\" href=\"{escape(link)}\"/>\n"
            f"    <title>{escape(title)}</title>\n"
            f"    <content type=\"html\">{escape(html_body)}</content>\n"
            "  </entry>\n")


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
