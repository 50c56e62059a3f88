"""The status page's HTML: one static file, inline CSS and SVG bars, no script, no external asset. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from shipyard.control.statuspage.model import Component, Page, maintenance_status
from shipyard.primitives.store.incidents import IncidentRec, MaintenanceRec

_COLOR = {"operational": "#2fcc66", "degraded_performance": "#f1c40f", "partial_outage": "#e67e22",
          "major_outage": "#e74c3c", "under_maintenance": "#3498db"}
_BANNER = {"none": "#2fcc66", "minor": "#f1c40f", "major": "#e67e22", "critical": "#e74c3c",
           "maintenance": "#3498db"}
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:860px;margin:2em auto;color:#333;
padding:0 1em}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.3em}
.banner{color:#fff;padding:1em 1.2em;border-radius:4px;font-size:1.2em;font-weight:600}
.comp{border:1px solid #e0e0e0;border-radius:4px;padding:.8em 1em;margin:.6em 0}
.comp .head{display:flex;justify-content:space-between}.state{font-size:.9em}
.legend{display:flex;justify-content:space-between;color:#999;font-size:.8em}
.inc{border-left:4px solid #ccc;padding:.2em 1em;margin:1em 0}.upd{margin:.5em 0}.upd b{text-transform:capitalize}
.muted{color:#999;font-size:.85em}
"""


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%b %d, %Y %H:%M UTC")


def render_html(page: Page) -> str:
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(page.title)}</title>"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             "<link rel=\"alternate\" type=\"application/atom+xml\" href=\"history.atom\" title=\"Incident history\">"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{escape(page.title)}</h1>",
             f"<div class=\"banner\" id=\"status\" data-indicator=\"{page.indicator}\" "
             f"style=\"background:{_BANNER[page.indicator]}\">{escape(page.description)}</div>"]
    if page.unresolved:
        parts.append("<h2>Active incidents</h2>")
        parts += [_incident(i) for i in page.unresolved]
    if page.maintenances:
        parts.append("<h2>Scheduled maintenance</h2>")
        parts += [_maintenance(m, page.now) for m in page.maintenances]
    parts.append("<h2>Components</h2>")
    parts += [_component(c) for c in page.components]
    parts.append("<h2>Past incidents</h2>")
    past = [i for i in page.incidents if i.resolved_at is not None]
    parts += [_incident(i) for i in past[:20]] or ["<p class=\"muted\">No incidents reported in the last 90 days.</p>"]
    parts.append(f"<p class=\"muted\">Updated {when(page.now)} · <a href=\"history.atom\">Atom feed</a> · "
                 "<a href=\"api/v2/summary.json\">summary.json</a></p></body></html>\n")
    return "".join(parts)


def _component(c: Component) -> str:
    label = c.status.replace("_", " ").capitalize()
    pct = "no data" if c.uptime is None else f"{c.uptime * 100:.2f} % uptime"
    return (f"<div class=\"comp\" data-component=\"{escape(c.name)}\" data-status=\"{c.status}\">"
            f"<div class=\"head\"><strong>{escape(c.name)}</strong>"
            f"<span class=\"state\" style=\"color:{_COLOR[c.status]}\">{label}</span></div>"
            f"{_bars(c)}<div class=\"legend\"><span>90 days ago</span><span>{pct}</span><span>Today</span></div></div>")


def _bars(c: Component) -> str:
    w, gap, h = 6, 2.4, 34
    rects = []
    for n, (day, uptime, maint) in enumerate(c.days):
        if maint and uptime is None:
            color, tip = _COLOR["under_maintenance"], "maintenance"
        elif uptime is None:
            color, tip = "#d5d5d5", "no data"
        else:
            color = (_COLOR["operational"] if uptime >= 0.999 else _COLOR["degraded_performance"] if uptime >= 0.99
                     else _COLOR["partial_outage"] if uptime >= 0.95 else _COLOR["major_outage"])
            tip = f"{uptime * 100:.2f} %" + (" (maintenance excluded)" if maint else "")
        date = datetime.fromtimestamp(day, UTC).strftime("%b %d")
        rects.append(f"<rect x=\"{n * (w + gap):.1f}\" y=\"0\" width=\"{w}\" height=\"{h}\" rx=\"1\" fill=\"{color}\">"
                     f"<title>{date}: {tip}</title></rect>")
    width = len(c.days) * (w + gap)
    return (f"<svg viewBox=\"0 0 {width:.0f} {h}\" width=\"100%\" height=\"{h}\" preserveAspectRatio=\"none\" "
            f"role=\"img\" aria-label=\"90-day uptime\">{''.join(rects)}</svg>")


def _incident(i: IncidentRec) -> str:
    color = {"none": "#999", "minor": "#f1c40f", "major": "#e67e22", "critical": "#e74c3c"}.get(i.impact, "#999")
    updates = "".join(f"<div class=\"upd\"><b>{escape(u.status)}</b> - {escape(u.body)}"
                      f"<div class=\"muted\">{when(u.at)}</div></div>" for u in i.updates)
    affected = f"<div class=\"muted\">Affected: {escape(', '.join(i.components))}</div>" if i.components else ""
    return (f"<div class=\"inc\" id=\"incident-{i.id}\" data-status=\"{i.status}\" style=\"border-color:{color}\">"
            f"<h3>{escape(i.title)}</h3>{updates}{affected}</div>")


def _maintenance(m: MaintenanceRec, now: float) -> str:
    state = maintenance_status(m, now).replace("_", " ")
    return (f"<div class=\"inc\" id=\"maintenance-{m.id}\" style=\"border-color:#3498db\">"
            f"<h3>{escape(m.message)}</h3><div class=\"upd\"><b>{escape(state)}</b> - "
            f"{when(m.starts_at)} to {when(m.ends_at)}</div></div>")
