"""The dashboard's HTML (pure): the login form and the environments overview with its actions."""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border-bottom:1px solid #eee;
padding:.35em .5em;text-align:left}.env{border:1px solid #ddd;border-radius:4px;padding:.6em 1em;margin:1em 0}
.ok{color:#1e8c4a}.bad{color:#c0392b}.muted{color:#888}button{cursor:pointer}.flash{background:#eef6ff;padding:.5em 1em}
header{display:flex;justify-content:space-between;align-items:center}"""


def _doc(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def login_page(message: str = "") -> str:
    note = f"<p class=\"bad\">{escape(message)}</p>" if message else ""
    return _doc("shipyard — log in", f"<h1>shipyard</h1>{note}<form method=\"post\" action=\"/login\">"
                "<label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" size=\"60\"></label> "
                "<button type=\"submit\">Log in</button></form>"
                "<p class=\"muted\">Or run <code>shipyard dashboard</code> for a one-time login link.</p>")


def overview(app: str, who: str, role: str, csrf: str, envs: list[dict[str, Any]],
             firing: dict[str, list[str]], flash: str = "") -> str:
    parts = [f"<header><h1>{escape(app)}</h1><div>{escape(who)} ({escape(role)}) "
             f"<form method=\"post\" action=\"/logout\" style=\"display:inline\">"
             f"<input type=\"hidden\" name=\"csrf\" value=\"{escape(csrf)}\"><button id=\"logout\">Log out</button>"
             "</form></div></header>"]
    if flash:
        parts.append(f"<p class=\"flash\" id=\"flash\">{escape(flash)}</p>")
    for e in envs:
        name = e["env"]
        alerts = firing.get(name, [])
        state = (f"<span class=\"bad\">firing: {escape(', '.join(alerts))}</span>" if alerts
                 else "<span class=\"ok\">no alert firing</span>")
        running = e.get("deployment")
        busy = f" · <b>{escape(running['kind'])} of {escape(running['release'])} running</b>" if running else ""
        rows = "".join(
            f"<tr><td>{escape(i['id'])}</td><td>{escape(i['release'])}</td><td>{escape(i['state'])}"
            f"{'' if i['ready'] else ' (not ready)'}{'' if i['routed'] else ', unrouted'}</td><td>{_num(i.get('cpu_percent'), '%')}</td>"
            f"<td>{_mib(i.get('rss_bytes'))}</td><td>{i['restarts']}</td></tr>" for i in e["instances"])
        weights = ", ".join(f"{escape(r)} {w}%" for r, w in e["weights"].items()) or "-"
        last = e.get("last_deployment")
        last_txt = (f"last: {escape(last['kind'])} {escape(last['release'])} {escape(last['outcome'])}"
                    + (f" ({escape(last['reason'])})" if last.get("reason") else "")) if last else "no deployment yet"
        action = ""
        if e.get("previous_release"):
            action = (f"<form method=\"post\" action=\"/rollback\"><input type=\"hidden\" name=\"env\" "
                      f"value=\"{escape(name)}\"><input type=\"hidden\" name=\"csrf\" value=\"{escape(csrf)}\">"
                      f"<button class=\"rollback\" data-env=\"{escape(name)}\">Roll back to "
                      f"{escape(e['previous_release'])}</button></form>")
        parts.append(f"<div class=\"env\" data-env=\"{escape(name)}\" data-release=\"{escape(e['release'] or '')}\">"
                     f"<h2>{escape(name)}</h2><p>serving <b class=\"release\">{escape(e['release'] or 'nothing')}</b>"
                     f" · weights {weights} · {state}{busy}</p><p class=\"muted\">{last_txt}</p>"
                     "<table><tr><th>instance</th><th>release</th><th>state</th><th>CPU</th><th>RSS</th>"
                     f"<th>restarts</th></tr>{rows}</table>{action}</div>")
    return _doc(f"{app} — shipyard", "".join(parts))


def _num(v: float | None, unit: str) -> str:
    return "-" if v is None else f"{v:.1f}{unit}"


def _mib(v: int | None) -> str:
    return "-" if v is None else f"{v / 1048576:.0f} MiB"
