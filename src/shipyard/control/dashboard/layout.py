"""The dashboard's page frame (pure): one stylesheet, the header with the pages and the logout form, and
small formatting helpers. Scripts only from /static (the CSP has no 'unsafe-inline' for scripts); a page's
data travels in a JSON data block (never executed), escaped so no text can close it."""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any

CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1150px;margin:1em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border-bottom:1px solid #eee;
padding:.35em .5em;text-align:left;vertical-align:top}.env{border:1px solid #ddd;border-radius:4px;padding:.6em 1em;
margin:1em 0}.ok{color:#1e8c4a}.bad{color:#c0392b}.warn{color:#b9770e}.muted{color:#888}button{cursor:pointer}
.flash{background:#eef6ff;padding:.5em 1em}header{display:flex;justify-content:space-between;align-items:center;
flex-wrap:wrap;border-bottom:1px solid #ddd;margin-bottom:.5em}nav a{margin-right:.9em}nav a.here{font-weight:bold;
color:#222;text-decoration:none}form.inline{display:inline}.kv b{margin-right:1.2em}.bar{height:14px;background:#eee;
border-radius:3px;overflow:hidden;width:320px;display:inline-block;vertical-align:middle}.bar span{display:block;
height:100%;background:#2e86de}.pill{border-radius:3px;padding:0 .4em;background:#eee}.pill.succeeded,.pill.pass,
.pill.ok{background:#d5f5e3}.pill.failed,.pill.fail,.pill.rolled_back,.pill.firing{background:#fadbd8}
.pill.running,.pill.pending,.pill.inconclusive{background:#fcf3cf}.chart{margin:1em 0}td.when{white-space:nowrap}h2{margin:.6em 0 .3em}[hidden]{display:none!important}"""
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGES = (("/", "Overview"), ("/live", "Live"), ("/history", "History"), ("/charts", "Charts"),
         ("/backups", "Backups"), ("/alerts", "Alerts"))


def doc(title: str, body: str, scripts: tuple[str, ...] = (), styles: tuple[str, ...] = ()) -> str:
    links = "".join(f"<link rel=\"stylesheet\" href=\"/static/{s}\">" for s in styles)
    tags = "".join(f"<script src=\"/static/{s}\" defer></script>" for s in scripts)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style>{links}{tags}</head><body>{body}</body></html>\n")


def frame(app: str, here: str, who: str, role: str, csrf: str, env: str | None, body: str, *,
          flash: str = "", title: str = "", scripts: tuple[str, ...] = (), styles: tuple[str, ...] = ()) -> str:
    """A logged-in page: header (app, pages, who, logout), the flash message, then ``body``."""
    q = f"?env={escape(env)}" if env else ""
    nav = "".join(f"<a href=\"{p}{q if p != '/' else ''}\"{_here(p == here)}>{n}</a>" for p, n in PAGES)
    head = (f"<header><h1>{escape(app)}</h1><nav>{nav}</nav><div>{escape(who)} ({escape(role)}) "
            f"<form method=\"post\" action=\"/logout\" class=\"inline\">{csrf_field(csrf)}"
            "<button id=\"logout\">Log out</button></form></div></header>")
    note = f"<p class=\"flash\" id=\"flash\">{escape(flash)}</p>" if flash else ""
    return doc(title or f"{app} — shipyard", head + note + body, scripts, styles)


def _here(yes: bool) -> str:
    return ' class="here"' if yes else ""


def _attr(name: str, value: str) -> str:
    return f' {name}="{escape(value)}"' if value else ""


def csrf_field(csrf: str) -> str:
    return f"<input type=\"hidden\" name=\"csrf\" value=\"{escape(csrf)}\">"


def action_form(csrf: str, action: str, label: str, fields: dict[str, str], *, back: str,
                css: str = "", title: str = "") -> str:
    """A button posting one action (with the CSRF token) to /action."""
    hidden = "".join(f"<input type=\"hidden\" name=\"{escape(k)}\" value=\"{escape(v)}\">" for k, v in fields.items())
    return (f"<form method=\"post\" action=\"/action\" class=\"inline\">{csrf_field(csrf)}"
            f"<input type=\"hidden\" name=\"action\" value=\"{escape(action)}\">"
            f"<input type=\"hidden\" name=\"back\" value=\"{escape(back)}\">{hidden}"
            f"<button class=\"{escape(css or action)}\" data-action=\"{escape(action)}\""
            f"{_attr('data-env', fields.get('env', ''))}{_attr('title', title)}>"
            f"{escape(label)}</button></form>")


def env_picker(here: str, envs: list[str], env: str) -> str:
    links = " ".join(f"<a href=\"{here}?env={escape(e)}\"{_here(e == env)}>{escape(e)}</a>" for e in envs)
    return f"<nav class=\"envs\">environment: {links}</nav>"


def data_block(element_id: str, value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<script type=\"application/json\" id=\"{escape(element_id)}\">{text}</script>"


def when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 1:  # restores and objectives of a few milliseconds: "0.0s" would hide them
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f}s"
    return f"{v / 60:.1f} min" if v < 7200 else f"{v / 3600:.1f} h"


def num(v: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f} ms"


def mib(v: int | None) -> str:
    return "-" if v is None else f"{v / 1048576:.0f} MiB"


def pill(text: str | None) -> str:
    t = text or "-"
    return f"<span class=\"pill {escape(t)}\">{escape(t)}</span>"
