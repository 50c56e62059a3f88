"""A report as one self-contained HTML file: inline CSS, inline SVG charts, no script, no external asset."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:1.5em auto;
padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.kpis{display:flex;gap:1em;flex-wrap:wrap}.kpi{border:1px solid #e3e3e3;border-radius:4px;padding:.6em 1em;min-width:9em}
.kpi b{display:block;font-size:1.4em}.ok{color:#1e8c4a}.bad{color:#c0392b}table{border-collapse:collapse;width:100%;
font-size:.9em}td,th{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left}.muted{color:#888}"""


def _t(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f} %"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def _dur(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min" if v < 7200 else f"{v / 3600:.1f} h"


def chart(values: Sequence[float | None], *, label: str, fmt: Any, color: str = "#3b7dd8",
          width: int = 460, height: int = 120, markers: Sequence[float] = ()) -> str:
    """A line chart (SVG) of ``values`` at equal steps; ``markers`` are fractions of the x axis (deploys)."""
    known = [v for v in values if v is not None]
    if not known:
        return f"<div class=\"muted\">{escape(label)}: no data</div>"
    top = max(known)
    scale = top or 1.0
    n = max(1, len(values) - 1)
    xy = [(i * width / n, height - 2 - (v / scale) * (height - 12)) for i, v in enumerate(values) if v is not None]
    pts = [f"{x:.1f},{y:.1f}" for x, y in xy]
    dots = "".join(f"<circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"2\" fill=\"{color}\"/>" for x, y in xy) \
        if len(xy) <= 40 else ""
    marks = "".join(f"<line x1=\"{m * width:.1f}\" x2=\"{m * width:.1f}\" y1=\"0\" y2=\"{height}\" stroke=\"#e67e22\" "
                    "stroke-dasharray=\"3,3\"/>" for m in markers)
    return (f"<figure><figcaption>{escape(label)} <span class=\"muted\">(max {escape(fmt(top))})</span></figcaption>"
            f"<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" "
            f"aria-label=\"{escape(label)}\"><rect width=\"{width}\" height=\"{height}\" fill=\"#fafafa\"/>{marks}"
            f"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{' '.join(pts)}\"/>{dots}</svg>"
            "</figure>")


def render_report(doc: dict[str, Any]) -> str:
    av, tr, dep, bk = doc["availability"], doc["traffic"], doc["deploys"], doc["backups"]
    met = av["met"]
    klass = "" if met is None else "ok" if met else "bad"
    span = max(1.0, doc["to"] - doc["from"])
    markers = [(d["started_at"] - doc["from"]) / span for d in dep["list"]]
    series = doc["series"]
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(doc['title'])}</title>"
             f"<style>{_CSS}</style></head><body><h1>{escape(doc['title'])}</h1>",
             f"<p class=\"muted\">{_t(doc['from'])} to {_t(doc['to'])}</p><div class=\"kpis\">",
             f"<div class=\"kpi\">Availability<b class=\"{klass}\">{_pct(av['value'])}</b>SLO {_pct(av['slo'], 2)}</div>",
             f"<div class=\"kpi\">Error rate<b>{_pct(tr['error_rate'], 2)}</b>{tr['requests']} requests</div>",
             f"<div class=\"kpi\">Latency<b>{_ms(tr['p95'])}</b>P50 {_ms(tr['p50'])} · P99 {_ms(tr['p99'])}</div>",
             f"<div class=\"kpi\">Deploys<b>{dep['count']}</b>{len(dep['rollbacks'])} rolled back</div>",
             f"<div class=\"kpi\">Alerts fired<b>{doc['alerts']['fired']}</b>{len(doc['incidents'])} incidents</div>",
             "</div><h2>Traffic over the period</h2>",
             chart([s["requests"] for s in series], label="Requests", fmt=lambda v: f"{v:.0f}", markers=markers),
             chart([s["error_rate"] for s in series], label="Error rate", fmt=lambda v: _pct(v, 2), color="#c0392b",
                   markers=markers),
             chart([s["p95"] for s in series], label="P95 latency", fmt=_ms, color="#8e44ad", markers=markers),
             "<h2>7-day trend</h2><table><tr><th>day</th><th>requests</th><th>error rate</th><th>P50</th>"
             "<th>P95</th><th>P99</th></tr>"]
    parts += [f"<tr><td>{_t(d['day'])[:10]}</td><td>{d['requests']}</td><td>{_pct(d['error_rate'], 2)}</td>"
              f"<td>{_ms(d['p50'])}</td><td>{_ms(d['p95'])}</td><td>{_ms(d['p99'])}</td></tr>" for d in doc["trend"]]
    parts.append("</table><h2>Deploys</h2>")
    if dep["list"]:
        parts.append("<table><tr><th>#</th><th>kind</th><th>release</th><th>outcome</th><th>duration</th>"
                     "<th>by</th><th>reason</th></tr>")
        parts += [f"<tr><td>{d['id']}</td><td>{escape(d['kind'])}</td><td>{escape(d['release'])}</td>"
                  f"<td>{escape(d['status'])}</td><td>{_dur(d['duration_s'])}</td>"
                  f"<td>{escape(d['performer'] or '-')}{_approvers(d.get('approved_by'))}</td>"
                  f"<td>{escape(d['reason'] or '')}</td></tr>"
                  for d in dep["list"]]
        parts.append("</table>")
    else:
        parts.append("<p class=\"muted\">No deploys in this period.</p>")
    parts += [f"<p class=\"rollback\">Rolled back: #{r['id']} {escape(r['release'])} by {escape(r['performer'] or '-')}"
              f" — {escape(r['reason'] or 'no reason recorded')}</p>" for r in dep["rollbacks"]]
    parts.append("<h2>Alerts and incidents</h2>")
    parts += [f"<p>{escape(rule)}: fired {n}×</p>" for rule, n in doc["alerts"]["by_rule"].items()]
    parts += [f"<p><b>{escape(i['title'])}</b> ({escape(i['impact'])}, {escape(i['status'])}) opened "
              f"{_t(i['created_at'])}</p>" for i in doc["incidents"]]
    if not doc["alerts"]["fired"] and not doc["incidents"]:
        parts.append("<p class=\"muted\">No alerts fired and no incidents.</p>")
    parts.append(_backups_html(bk))
    return "".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _backups_html(bk: dict[str, Any]) -> str:
    newest = ("no successful backup yet" if bk["newest_age_s"] is None
              else f"the stalest source's newest is {_dur(bk['newest_age_s'])} old")
    out = [f"<h2>Backups and drills</h2><p>{_n(bk['runs'], 'backup')} ({bk['failed']} failed); {newest}"
           f"{_objective(bk['rpo_s'], bk['rpo_met'], 'RPO')}.</p>"]
    if bk["sources"]:
        out.append("<table><tr><th>source</th><th>backups</th><th>failed</th><th>newest</th><th>RPO</th></tr>")
        out += [f"<tr><td>{escape(s['source'])}</td><td>{s['runs']}</td><td>{s['failed']}</td>"
                f"<td>{_dur(s['newest_age_s'])} old</td><td>{_met(s['rpo_met'])}</td></tr>" for s in bk["sources"]]
        out.append("</table>")
    if bk["last_drill_s"] is None:
        drill = "no drill yet"
    else:
        drill = (f"the last ({_t(bk['last_drill_at'])}, {'passed' if bk['last_drill_ok'] else 'failed'}) restored in "
                 f"{_dur(bk['last_drill_s'])}{_objective(bk['rto_s'], bk['rto_met'], 'RTO')}")
        if bk["last_drill_rpo_s"] is not None:
            drill += (f", its data {_dur(bk['last_drill_rpo_s'])} old"
                      f"{_objective(bk['rpo_s'], bk['drill_rpo_met'], 'RPO')}")
    out.append(f"<p>{_n(bk['drills'], 'drill')} ({bk['drills_failed']} failed); {drill}.</p></body></html>\n")
    return "".join(out)


def _approvers(names: Any) -> str:
    return f"<br><span class=\"muted\">approved by {escape(', '.join(names))}</span>" if names else ""


def _met(met: bool | None) -> str:
    return "-" if met is None else "<span class=\"ok\">met</span>" if met else "<span class=\"bad\">missed</span>"


def _objective(target: float | None, met: bool | None, name: str) -> str:
    if target is None:
        return f" (no {name} set)"
    word = "unknown" if met is None else "met" if met else "missed"
    return f" ({name} {_dur(target)}: {word})"
