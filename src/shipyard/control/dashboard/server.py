"""The dashboard's HTTP server (127.0.0.1, one request per connection): pages for a session, actions for a
session whose role may act and whose POST carries its CSRF token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shipyard.control.access.identities import Identity, TokenBook
from shipyard.control.dashboard.pages import login_page, overview
from shipyard.control.deploys.inputs import DeployRequest
from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.service import DeployService
from shipyard.control.deploys.status import status_json
from shipyard.control.target import Targets
from shipyard.control.websessions import WebSessions
from shipyard.errors import ShipyardError
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")
COOKIE = "shipyard_session"
MAX_BODY = 16384


@dataclass(frozen=True)
class DashboardContext:
    sessions: WebSessions[Identity]
    tokens: TokenBook
    load_spec: Callable[[], Spec]
    store: Store
    targets: Targets
    registry: Registry
    deploys: DeployService
    firing: Callable[[str], list[str]]  # names of the env's firing alerts


class Dashboard:
    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self._server: asyncio.Server | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
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
            status, extra, html = await self._route(method, target, headers, body)
            payload = html.encode()
            writer.write((f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                          f"Content-Length: {len(payload)}\r\nConnection: close\r\nCache-Control: no-store\r\n"
                          "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
                          "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'\r\n"
                          f"{extra}\r\n").encode() + payload)
            await asyncio.wait_for(writer.drain(), 10.0)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except Exception:
            log.exception("dashboard: a request failed")
        finally:
            writer.close()

    async def _route(self, method: str, target: str, headers: dict[str, str], body: str) -> tuple[str, str, str]:
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        form = {k: v[0] for k, v in parse_qs(body).items()}
        sid = _cookie(headers.get("cookie", ""))
        session = self.ctx.sessions.get(sid)
        path = url.path
        if path == "/login" and method == "GET" and query.get("code"):
            who = self.ctx.sessions.redeem(query["code"])
            return self._logged_in(who) if who else ("403 Forbidden", "", login_page("That link was used or expired."))
        if path == "/login" and method == "POST":
            who = self.ctx.tokens.identify(form.get("token", "")) if form.get("token") else None
            return self._logged_in(who) if who else ("403 Forbidden", "", login_page("Unknown or revoked token."))
        if path == "/login":
            return "200 OK", "", login_page()
        if session is None:
            return "303 See Other", "Location: /login\r\n", ""
        if method == "GET" and path == "/":
            return "200 OK", "", self._overview(session.who, session.csrf, query.get("msg", ""))
        if method != "POST" or path not in ("/rollback", "/logout"):
            return "404 Not Found", "", "not found\n"
        if not self.ctx.sessions.csrf_ok(session, form.get("csrf")):
            return "403 Forbidden", "", "refused: this form has no valid CSRF token (reload the page)\n"
        if path == "/logout":
            self.ctx.sessions.close(sid)
            return "303 See Other", f"Location: /login\r\nSet-Cookie: {COOKIE}=; Max-Age=0; Path=/; HttpOnly; " \
                                    "SameSite=Strict\r\n", ""
        env = form.get("env", "")
        who = session.who
        if not who.may("deploy") or not who.may_env(env):
            return "403 Forbidden", "", f"refused: {who.name} (role {who.role}) may not roll back {env}\n"
        try:
            message = await self._rollback(env, who)
        except ShipyardError as err:
            message = f"rollback of {env} refused: {err}"
        from urllib.parse import quote

        return "303 See Other", f"Location: /?msg={quote(message)}\r\n", ""

    def _logged_in(self, who: Identity) -> tuple[str, str, str]:
        sid, _ = self.ctx.sessions.open(who)
        return ("303 See Other", f"Location: /\r\nSet-Cookie: {COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict\r\n", "")

    def _overview(self, who: Identity, csrf: str, flash: str) -> str:
        spec = self.ctx.load_spec()
        envs: Any = status_json(spec, None, store=self.ctx.store, targets=self.ctx.targets,
                                registry=self.ctx.registry)
        firing = {e["env"]: self.ctx.firing(e["env"]) for e in envs}
        return overview(spec.app.name, who.performer, who.role, csrf, envs, firing, flash)

    async def _rollback(self, env: str, who: Identity) -> str:
        plan = self.ctx.deploys.prepare(DeployRequest("rollback", env), self.ctx.load_spec())
        self.ctx.deploys.check_port(plan)
        self.ctx.deploys.check_free(plan.env)
        stream = self.ctx.deploys.stream(plan, False, who.performer)

        async def drain() -> None:
            async for _ in stream:
                pass

        task = asyncio.get_running_loop().create_task(drain(), name=f"dashboard-rollback-{env}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return f"rollback of {env} to {plan.release} started"


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == COOKIE:
            return v
    return None
