"""The dashboard's HTML (pure): the login form and the environments overview with its actions."""

from __future__ import annotations

from html import escape
from typing import Any

from shipyard.control.dashboard.layout import action_form, doc, frame, mib, ms, num, pct


def login_page(message: str = "") -> str:
    note = f"<p class=\"bad\">{escape(message)}</p>" if message else ""
    return doc("shipyard — log in", f"<h1>shipyard</h1>{note}<form method=\"post\" action=\"/login\">"
               "<label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" size=\"60\"></label> "
               "<button type=\"submit\">Log in</button></form>"
               "<p class=\"muted\">Or run <code>shipyard dashboard</code> for a one-time login link.</p>")


def overview(app: str, who: str, role: str, csrf: str, envs: list[dict[str, Any]],
             firing: dict[str, list[str]], flash: str = "",
             traffic: dict[str, dict[str, Any] | None] | None = None, acts: frozenset[str] | None = None) -> str:
    """``traffic``: per environment, the last hour from the metric history (rps, error_rate, p95);
    ``acts``: the environments whose actions the caller may use (None: all; the server refuses anyway)."""
    parts = []
    for e in envs:
        name = e["env"]
        alerts = firing.get(name, [])
        state = (f"<span class=\"bad\">firing: {escape(', '.join(alerts))}</span>" if alerts
                 else "<span class=\"ok\">no alert firing</span>")
        running = e.get("deployment")
        busy = f" · <b>{escape(running['kind'])} of {escape(running['release'])} running</b>" if running else ""
        canary = e.get("canary")
        if canary:
            busy += (f" · <a href=\"/live?env={escape(name)}\">canary at {canary['weight']}%"
                     f"{' (paused)' if canary['paused'] else ''} — watch it live</a>")
        rows = "".join(
            f"<tr><td>{escape(i['id'])}</td><td>{escape(i['release'])}</td><td>{escape(i['state'])}"
            f"{'' if i['ready'] else ' (not ready)'}{'' if i['routed'] else ', unrouted'}</td>"
            f"<td>{num(i.get('cpu_percent'), '%')}</td><td>{mib(i.get('rss_bytes'))}</td><td>{i['restarts']}</td></tr>"
            for i in e["instances"])
        weights = ", ".join(f"{escape(r)} {w}%" for r, w in e["weights"].items()) or "-"
        last = e.get("last_deployment")
        last_txt = (f"last: {escape(last['kind'])} {escape(last['release'])} {escape(last['outcome'])}"
                    + (f" ({escape(last['reason'])})" if last.get("reason") else "")) if last else "no deployment yet"
        t = (traffic or {}).get(name)
        seen = (f"<p class=\"traffic\">last hour: {num(t['rps'], ' req/s', 2)} · errors {pct(t['error_rate'])}"
                f" · P95 {ms(t['p95'])}</p>") if t else "<p class=\"traffic muted\">no traffic in the last hour</p>"
        action = ""
        if e.get("previous_release") and (acts is None or name in acts):
            action = action_form(csrf, "rollback", f"Roll back to {e['previous_release']}", {"env": name},
                                 back="/", css="rollback")
        parts.append(f"<div class=\"env\" data-env=\"{escape(name)}\" data-release=\"{escape(e['release'] or '')}\">"
                     f"<h2>{escape(name)} <small><a href=\"/live?env={escape(name)}\">live</a> · "
                     f"<a href=\"/charts?env={escape(name)}\">charts</a> · "
                     f"<a href=\"/history?env={escape(name)}\">history</a></small></h2>"
                     f"<p>serving <b class=\"release\">{escape(e['release'] or 'nothing')}</b>"
                     f" · weights {weights} · {state}{busy}</p>{seen}<p class=\"muted\">{last_txt}</p>"
                     "<table><tr><th>instance</th><th>release</th><th>state</th><th>CPU</th><th>RSS</th>"
                     f"<th>restarts</th></tr>{rows}</table>{action}</div>")
    return frame(app, "/", who, role, csrf, None, "".join(parts), flash=flash)
