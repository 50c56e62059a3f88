"""The dashboard's HTTP server (127.0.0.1, one request per connection): pages for a session, actions for a
session whose role may act and whose POST carries its CSRF token, the live view's server-sent events
(/events, cookie-authenticated like the pages; it ends when the session does), and the packaged static
files (/static: the scripts and the vendored uPlot with its licence)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from shipyard.control.access.identities import Identity, TokenBook
from shipyard.control.dashboard.actions import Actions
from shipyard.control.dashboard.layout import CSP
from shipyard.control.dashboard.pages import login_page
from shipyard.control.dashboard.views import Session, Views
from shipyard.control.tasks import guarded
from shipyard.control.websessions import WebSession, WebSessions
from shipyard.errors import NotPermitted, ShipyardError
from shipyard.primitives.clock import Clock

log = logging.getLogger("shipyard.control")
COOKIE = "shipyard_session"
MAX_BODY = 16384
SSE_TICK_S = 1.0  # the live view's sampling period (the canary runner decides once a second)
SSE_BEAT_S = 15.0  # a comment line keeps idle proxies and the browser from timing the stream out
STATIC = {"live.js": "text/javascript", "charts.js": "text/javascript", "uplot.iife.min.js": "text/javascript",
          "uplot.min.css": "text/css", "uplot.LICENSE": "text/plain"}
Reply = tuple[str, str, str]  # status line, extra header lines, HTML
_SAFE_BACK = re.compile(r"/[A-Za-z0-9_./?=&%-]{0,200}")


@dataclass(frozen=True)
class DashboardContext:
    sessions: WebSessions[Identity]
    tokens: TokenBook
    views: Views
    actions: Actions
    clock: Clock
    # The environments for the background refresh: a task reads the spec only when it changed (SpecWatch),
    # not once per tick through the counted per-request source.
    environments: Callable[[], list[str]]


class Dashboard:
    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self._server: asyncio.Server | None = None
        self.port: int | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self._static: dict[str, bytes] = {}
        self._fresh: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        views = self.ctx.views
        self._fresh = guarded(views.last_hour.keep_fresh(self.ctx.clock, self.ctx.environments),
                              "dashboard-traffic")
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        self._closing.set()
        if self._fresh is not None:
            self._fresh.cancel()
        for w in list(self._streams):
            w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            lines = head.decode("latin-1").split("\r\n")
            method, target = (lines[0].split(" ") + ["", ""])[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            length = min(int(headers.get("content-length") or 0), MAX_BODY)
            body = (await asyncio.wait_for(reader.readexactly(length), 5.0)).decode() if length else ""
            url = urlsplit(target)
            if method == "GET" and url.path.startswith("/static/"):
                await self._send_static(writer, url.path[len("/static/"):])
                return
            sid = _cookie(headers.get("cookie", ""))
            if method == "GET" and url.path == "/events" and self.ctx.sessions.get(sid) is not None:
                await self._events(writer, sid, _query(url.query).get("env", ""))
                return
            t0 = self.ctx.clock.monotonic()
            status, extra, html = await self._route(method, url.path, _query(url.query), _query(body), sid)
            # The server's own time for the page (bench/dashboard_overview.py reads it).
            took = (self.ctx.clock.monotonic() - t0) * 1000
            await _send(writer, status, "text/html; charset=utf-8", html.encode(),
                        f"{extra}Server-Timing: page;dur={took:.1f}\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except Exception:
            log.exception("dashboard: a request failed")
        finally:
            writer.close()

    async def _route(self, method: str, path: str, query: dict[str, str], form: dict[str, str],
                     sid: str | None) -> Reply:
        sessions = self.ctx.sessions
        if path == "/login" and method == "GET" and query.get("code"):
            who = sessions.redeem(query["code"])
            return self._logged_in(who) if who else ("403 Forbidden", "", login_page("That link was used or expired."))
        if path == "/login" and method == "POST":
            who = self.ctx.tokens.identify(form.get("token", "")) if form.get("token") else None
            return self._logged_in(who) if who else ("403 Forbidden", "", login_page("Unknown or revoked token."))
        if path == "/login":
            return "200 OK", "", login_page()
        session = sessions.get(sid)
        if session is None:
            return "303 See Other", "Location: /login\r\n", ""
        if method == "GET":
            page = self._pages().get(path)
            if page is None:
                return "404 Not Found", "", "not found\n"
            s = Session(session.who, session.csrf, query.get("msg", ""))
            try:
                return "200 OK", "", await page(s, query)
            except NotPermitted as err:
                return "403 Forbidden", "", f"refused: {_plain(str(err))}\n"
            except ShipyardError as err:
                return "400 Bad Request", "", f"{_plain(str(err))}\n"
        if path not in ("/action", "/rollback", "/logout"):
            return "404 Not Found", "", "not found\n"
        if not sessions.csrf_ok(session, form.get("csrf")):
            return "403 Forbidden", "", "refused: this form has no valid CSRF token (reload the page)\n"
        if path == "/logout":
            sessions.close(sid)
            return "303 See Other", f"Location: /login\r\nSet-Cookie: {COOKIE}=; Max-Age=0; Path=/; HttpOnly; " \
                                    "SameSite=Strict\r\n", ""
        return await self._act(session, "rollback" if path == "/rollback" else form.get("action", ""), form)

    def _pages(self) -> dict[str, Callable[[Session, dict[str, str]], Awaitable[str]]]:
        v = self.ctx.views
        return {"/": lambda s, q: v.overview(s), "/live": v.live, "/history": v.history, "/charts": v.charts,
                "/backups": v.backups, "/alerts": v.alerts}

    async def _act(self, session: WebSession[Identity], action: str, form: dict[str, str]) -> Reply:
        who = session.who
        try:
            message = await self.ctx.actions.perform(who, action, form)
        except NotPermitted as err:
            return "403 Forbidden", "", (f"refused: {who.name} (role {who.role}) may not "
                                         f"{self.ctx.actions.verb(action, form)}: {_plain(str(err))}\n")
        except ShipyardError as err:
            message = f"{self.ctx.actions.verb(action, form)}: refused: {err}"
        back = form.get("back", "/")
        if not _SAFE_BACK.fullmatch(back) or back.startswith("//"):
            back = "/"  # only this dashboard's own pages, and nothing that could end the header line
        sep = "&" if "?" in back else "?"
        return "303 See Other", f"Location: {back}{sep}msg={quote(message[:500])}\r\n", ""

    def _logged_in(self, who: Identity) -> Reply:
        sid, _ = self.ctx.sessions.open(who)
        return ("303 See Other", f"Location: /\r\nSet-Cookie: {COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict\r\n", "")

    async def _events(self, writer: asyncio.StreamWriter, sid: str | None, env: str) -> None:
        """The live view's stream: a ``live`` event whenever the environment's document changes (at most
        once a second), a comment line when idle, ``bye`` when the session ends (logout, expiry)."""
        session = self.ctx.sessions.get(sid)
        assert session is not None
        try:
            self.ctx.views.load_spec().env(env)
        except ShipyardError as err:
            await _send(writer, "400 Bad Request", "text/plain; charset=utf-8", f"{err}\n".encode())
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store"
                     b"\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n")
        self._streams.add(writer)
        clock, last, beat = self.ctx.clock, "", self.ctx.clock.monotonic()
        try:
            while not self._closing.is_set():
                if self.ctx.sessions.get(sid) is None:
                    writer.write(b"event: bye\ndata: {}\n\n")
                    await asyncio.wait_for(writer.drain(), 5.0)
                    return
                try:
                    doc: Any = await self.ctx.views.live_doc(session.who, env)
                    text = json.dumps(doc, separators=(",", ":"), default=str)
                except ShipyardError as err:
                    text = json.dumps({"env": env, "error": str(err)})
                if text != last:
                    writer.write(f"event: live\ndata: {text}\n\n".encode())
                    last, beat = text, clock.monotonic()
                elif clock.monotonic() - beat >= SSE_BEAT_S:
                    writer.write(b": keep-alive\n\n")
                    beat = clock.monotonic()
                await asyncio.wait_for(writer.drain(), 10.0)
                await clock.sleep(SSE_TICK_S)
        finally:
            self._streams.discard(writer)

    async def _send_static(self, writer: asyncio.StreamWriter, name: str) -> None:
        kind = STATIC.get(name)
        if kind is None:
            await _send(writer, "404 Not Found", "text/plain", b"not found\n")
            return
        if name not in self._static:
            self._static[name] = resources.files("shipyard.control.dashboard").joinpath("static", name).read_bytes()
        await _send(writer, "200 OK", f"{kind}; charset=utf-8", self._static[name],
                    "Cache-Control: max-age=300\r\n", no_store=False)


async def _send(writer: asyncio.StreamWriter, status: str, kind: str, payload: bytes, extra: str = "",
                no_store: bool = True) -> None:
    store = "Cache-Control: no-store\r\n" if no_store else ""
    writer.write((f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                  f"Connection: close\r\n{store}X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
                  f"Content-Security-Policy: {CSP}\r\nReferrer-Policy: no-referrer\r\n{extra}\r\n").encode() + payload)
    await asyncio.wait_for(writer.drain(), 10.0)


def _query(text: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(text).items()}


def _plain(text: str) -> str:
    from html import escape

    return escape(text)


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == COOKIE:
            return v
    return None
