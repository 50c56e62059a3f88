"""The deployment history page (pure): outcomes, durations, performers and, for a rollback, the failing
conditions with their observed values and windows (what `shipyard history --json` carries)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from shipyard.control.dashboard.layout import env_picker, frame, pill, secs, when


def failing_conditions(row: dict[str, Any]) -> list[str]:
    """Why a deployment failed or was rolled back, one line per condition."""
    out: list[str] = []
    rb = row.get("rollback") or {}
    for f in (rb.get("canary") or {}).get("failing") or []:
        value = f.get("value")
        shown = json.dumps(value) if isinstance(value, dict) else str(value)
        window = f.get("window")
        span = f" over {window[1] - window[0]}s" if isinstance(window, list) and len(window) == 2 else (
            f" over {window}s" if window else "")
        out.append(f"{f.get('condition')}: {shown}{span} — {f.get('reason') or ''}".rstrip(" —"))
    if rb and not out:
        out.append(f"{rb.get('step')}: {rb.get('error') or rb.get('description') or ''}")
    trig = row.get("trigger") or {}
    for f in (trig.get("watch") or {}).get("firing") or []:
        out.append(f"post-deploy watch: {f.get('describe')} = {f.get('value')} — {f.get('reason') or ''}")
    return out


def history_page(app: str, who: str, role: str, csrf: str, envs: list[str], env: str, rows: list[dict[str, Any]],
                 flash: str = "") -> str:
    body = []
    for r in rows:
        why = failing_conditions(r)
        reason = escape(r.get("reason") or "")
        conds = "".join(f"<li>{escape(c)}</li>" for c in why)
        listed = f"<ul class=\"failing\">{conds}</ul>" if conds else ""
        body.append(f"<tr class=\"deployment\" data-id=\"{r['deployment']}\" data-outcome=\"{escape(r['outcome'])}\">"
                    f"<td>#{r['deployment']}</td><td>{when(r['started_at'])}</td><td>{escape(r['kind'])}</td>"
                    f"<td>{escape(r['release'])}<br><small class=\"muted\">from {escape(r.get('previous_release') or '-')}"
                    f"</small></td><td>{escape(r['strategy'])}</td><td>{pill(r['outcome'])}</td>"
                    f"<td>{secs(r.get('duration_s'))}</td><td class=\"performer\">{escape(r.get('performer') or '-')}</td>"
                    f"<td>{reason}{listed}</td></tr>")
    table = ("<table id=\"history\"><tr><th>#</th><th>started</th><th>kind</th><th>release</th><th>strategy</th>"
             "<th>outcome</th><th>took</th><th>performer</th><th>reason / failing conditions</th></tr>"
             + "".join(body) + "</table>") if body else "<p class=\"muted\">no deployment yet</p>"
    return frame(app, "/history", who, role, csrf, env, f"{env_picker('/history', envs, env)}<h2>History of "
                 f"{escape(env)}</h2>{table}", flash=flash, title=f"{env} history — {app}")
