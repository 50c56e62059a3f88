"""The backups page (backups, problems, restore drills against the RTO/RPO) and the alerts page (every rule
with its state, value and since when; the silences, with add and expire) — pure."""

from __future__ import annotations

from html import escape
from typing import Any

from shipyard.control.dashboard.layout import action_form, csrf_field, env_picker, frame, pill, secs, when
from shipyard.engine.alerting.rules import format_value
from shipyard.primitives.spec.alerting import parse_expr
from shipyard.primitives.spec.backup import BackupSpec
from shipyard.primitives.spec.durations import parse_duration
from shipyard.primitives.store.records import DrillRec


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.1f} KiB"


def _objective(measured: float | None, limit: float | None, check: dict[str, Any] | None) -> str:
    """The measure against the objective the drill was judged by (its own check: the spec may have changed
    since), or against today's objective for a drill judged without one."""
    if measured is None:
        return "-"
    if check is not None:
        ok = bool(check.get("ok"))
        then = _judged_by(str(check.get("detail") or "")) or (secs(limit) if limit else "?")
    elif limit is None:
        return secs(measured)
    else:
        ok, then = measured <= limit, secs(limit)
    return f"<span class=\"{'ok' if ok else 'bad'}\">{secs(measured)} {'≤' if ok else '&gt;'} {escape(then)}</span>"


def _judged_by(detail: str) -> str:
    """The objective in a drill check's detail (``48ms ≤ objective 1h``), in this page's units."""
    try:
        return secs(parse_duration(detail.rsplit("objective ", 1)[1])) if "objective " in detail else ""
    except ValueError:  # a detail written otherwise: today's objective instead
        return ""


def backups_page(app: str, who: str, role: str, csrf: str, envs: list[str], env: str, backup: BackupSpec | None,
                 listing: dict[str, Any] | None, drills: list[DrillRec], problem: str, flash: str = "") -> str:
    parts = [env_picker("/backups", envs, env), f"<h2>Backups of {escape(env)}</h2>"]
    if backup is None:
        parts.append("<p class=\"muted\">no [backup] for this environment</p>")
    else:
        parts.append(f"<p class=\"kv\"><b>RTO {secs(backup.rto) if backup.rto else 'not set'}</b>"
                     f"<b>RPO {secs(backup.rpo) if backup.rpo else 'not set'}</b>"
                     f"<b>sources {escape(', '.join(s.name for s in backup.sources) or '-')}</b></p>")
    if problem:
        parts.append(f"<p class=\"bad\">the repository could not be read: {escape(problem)}</p>")
    if listing is not None:
        rows = "".join(f"<tr class=\"backup\"><td>{escape(b['id'])}</td><td>{escape(b['source'])}</td>"
                       f"<td>{escape(b['kind'])}</td><td>{when(b['created_at'])}</td><td>{_size(b.get('plain_size'))}"
                       f"</td><td>{_size(b.get('stored_size'))}</td></tr>" for b in reversed(listing["backups"]))
        parts.append("<h3>Backups</h3>" + (f"<table id=\"backups\"><tr><th>id</th><th>source</th><th>kind</th>"
                     f"<th>taken</th><th>size</th><th>stored</th></tr>{rows}</table>" if rows
                     else "<p class=\"muted\">none yet</p>"))
        probs = "".join(f"<li class=\"bad\">{when(p['started_at'])} {escape(p['source'])}: {escape(p['status'])}</li>"
                        for p in listing["problems"])
        if probs:
            parts.append(f"<h3>Failed or missed runs</h3><ul>{probs}</ul>")
    rto = backup.rto if backup else None
    rpo = backup.rpo if backup else None
    drows = []
    for d in drills:
        for src in d.detail.get("sources") or []:
            checks = ", ".join(f"{c.get('name')} {'ok' if c.get('ok') else 'FAILED'}" for c in src.get("checks") or [])
            judged = {c.get("name"): c for c in src.get("checks") or []}
            drows.append(f"<tr class=\"drill\" data-ok=\"{str(bool(src.get('ok'))).lower()}\"><td class=\"when\">{when(d.started_at)}</td>"
                         f"<td>{escape(str(src.get('source')))}</td><td>{pill('ok' if src.get('ok') else 'failed')}</td>"
                         f"<td class=\"rto\">{_objective(src.get('rto_s'), rto, judged.get('rto'))}</td>"
                         f"<td class=\"rpo\">{_objective(src.get('rpo_s'), rpo, judged.get('rpo'))}</td>"
                         f"<td>{escape(checks)}</td></tr>")
    parts.append("<h3>Restore drills (against the RTO / RPO)</h3>" + (
        "<table id=\"drills\"><tr><th>when</th><th>source</th><th>outcome</th><th>restore time (RTO)</th>"
        f"<th>data age (RPO)</th><th>checks</th></tr>{''.join(drows)}</table>" if drows
        else "<p class=\"muted\">no drill yet (<code>shipyard backup drill</code>)</p>"))
    return frame(app, "/backups", who, role, csrf, env, "".join(parts), flash=flash, title=f"{env} backups — {app}")


def _value(rule: dict[str, Any]) -> str:
    """The rule's latest value in its series' unit. Its summary is a sentence about the alert ("no instance is
    up"), shown only while it is pending or firing: beside an inactive rule it would read as a fact."""
    try:
        series = parse_expr(rule["expr"]).series
    except ValueError:
        series = "promql"
    text = format_value(series, rule.get("value"))
    return f"<span class=\"muted\">{text}</span>" if rule.get("value") is None else escape(text)


def alerts_page(app: str, who: str, role: str, csrf: str, envs: list[str], env: str | None,
                rules: list[dict[str, Any]], silences: list[dict[str, Any]], flash: str = "") -> str:
    back = f"/alerts?env={env}" if env else "/alerts"
    order = {"firing": 0, "pending": 1, "resolved": 2, "inactive": 3}
    rows = "".join(
        f"<tr class=\"rule\" data-name=\"{escape(r['name'])}\" data-state=\"{escape(r['state'])}\">"
        f"<td>{escape(r['env'])}</td><td>{escape(r['name'])}</td><td>{pill(r['state'])}</td>"
        f"<td>{escape(r['severity'])}</td><td class=\"value\">{_value(r)}</td>"
        f"<td class=\"summary\">{escape(r.get('summary') or '') if r['state'] in ('firing', 'pending') else ''}</td>"
        f"<td>{when(r.get('since'))}</td>"
        f"<td><code>{escape(r['expr'])}</code></td></tr>"
        for r in sorted(rules, key=lambda r: (order.get(r["state"], 9), r["env"], r["name"])))
    srows = "".join(
        f"<tr class=\"silence\" data-id=\"{s['id']}\"><td>#{s['id']}</td><td><code>{escape(s['match'])}</code></td>"
        f"<td>{pill(s['state'])}</td><td>{when(s['ends_at'])}</td><td>{escape(s['comment'])}</td>"
        f"<td>{escape(s['created_by'])}</td><td>"
        f"{action_form(csrf, 'silence_expire', 'Expire', {'id': str(s['id'])}, back=back) if s['state'] != 'expired' else ''}"
        "</td></tr>" for s in silences)
    add = (f"<form method=\"post\" action=\"/action\" id=\"silence-add\">{csrf_field(csrf)}"
           "<input type=\"hidden\" name=\"action\" value=\"silence_add\">"
           f"<input type=\"hidden\" name=\"back\" value=\"{escape(back)}\">"
           f"<label>match <input name=\"match\" size=\"34\" value=\"{escape(f'env={env}' if env else '')}\" "
           "placeholder=\"env=prod,alertname=HighErrorRate\"></label> "
           "<label>for <input name=\"for\" size=\"5\" value=\"2h\"></label> "
           "<label>why <input name=\"comment\" size=\"30\"></label> <button>Silence</button></form>")
    body = (env_picker("/alerts", envs, env or "") + f"<h2>Alerts{' of ' + escape(env) if env else ''}</h2>"
            + (f"<table id=\"rules\"><tr><th>env</th><th>rule</th><th>state</th><th>severity</th><th>value</th>"
               f"<th>summary</th><th>since</th><th>expression</th></tr>{rows}</table>" if rows else "<p class=\"muted\">no rules</p>")
            + "<h2>Silences</h2>" + (f"<table id=\"silences\"><tr><th>#</th><th>match</th><th>state</th><th>until</th>"
                                     f"<th>why</th><th>by</th><th></th></tr>{srows}</table>" if srows
                                     else "<p class=\"muted\">no active silence</p>") + add)
    return frame(app, "/alerts", who, role, csrf, env, body, flash=flash, title=f"alerts — {app}")
