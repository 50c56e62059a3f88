"""One environment inside the router: its listener, current table, instances and routing decisions."""

from __future__ import annotations

import asyncio
import html
import socket
from time import monotonic
from typing import TYPE_CHECKING
from zlib import crc32

from shipyard.primitives.metrics import Series
from shipyard.primitives.routerproto import RoutingTable, TableError
from shipyard.primitives.spec.router import RateLimitSpec, RouterEnvSpec
from shipyard.router.clientip import TrustedProxies
from shipyard.router.h1 import Limits, RequestHead
from shipyard.router.headers import HeaderPolicy
from shipyard.router.listeners import LISTEN_BACKLOG, RedirectConn, TlsFiles, listen_socket
from shipyard.router.proxy import ClientConn
from shipyard.router.ratelimit import RateLimiter
from shipyard.router.upstream import Instance

if TYPE_CHECKING:
    from shipyard.router.server import Router

RETIRED_KEEP_S = 15 * 60  # removed instances keep reporting stats for the retention window


def _bind(host: str, port: int, what: str) -> socket.socket:
    try:
        return listen_socket(host, port)
    except OSError as exc:
        raise TableError(f"{what}port {port} is in use" if exc.errno in (98, 48, 13)
                         else f"{what}cannot listen on {host}:{port}: {exc.strerror}") from exc


class _Share:
    """A release's place in the smooth weighted round robin (mutated on every pick, so not frozen)."""

    __slots__ = ("release", "weight", "current")

    def __init__(self, release: str, weight: float) -> None:
        self.release = release
        self.weight = weight
        self.current = 0.0


class EnvRuntime:
    def __init__(self, router: Router, name: str) -> None:
        self.router = router
        self.loop = router.loop
        self.name = name
        self.table: RoutingTable | None = None
        self.settings = RouterEnvSpec()
        # The settings read on every request, as plain floats (a pydantic model's attribute is a dict lookup).
        self.header_timeout = self.idle_timeout = self.response_timeout = 0.0
        self._timeouts(self.settings)
        self.limits = Limits()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.bind = ""
        self._tls_key: tuple[str, str] | None = None
        self.tls: TlsFiles | None = None
        self.redirect: asyncio.AbstractServer | None = None  # redirect_http: the plain listener
        self.redirect_key: tuple[str, int] | None = None
        self.instances: dict[tuple[str, str], Instance] = {}
        self.retired: dict[tuple[str, str], tuple[Instance, float]] = {}
        self.weights: dict[str, float] = {}
        self.draining: set[str] = set()
        self.conns: set[ClientConn] = set()
        self.unrouted = Series(name, "", "")
        self.paused: asyncio.Future[None] | None = None
        self.max_pause = 30.0
        self.maintenance: bytes | None = None
        self.maintenance_allow = TrustedProxies()  # peers that pass through maintenance (`--allow`)
        self.maintenance_extra = b""  # the Retry-After header of the 503
        self.limiter: RateLimiter | None = None
        self.proxies = TrustedProxies()
        self.settings_proxies: list[str] = []
        self._limit_spec: RateLimitSpec | None = None
        self.headers = HeaderPolicy()
        self.alog_sample = 0.0
        self.sticky_cookie: str | None = None
        self.sticky_header: bytes | None = None
        # Routing state, rebuilt on every change.
        self._by_rel: dict[str, list[Instance]] = {}
        self._swrr: list[_Share] = []
        self._total = 0.0
        self._cum: list[tuple[float, str]] = []
        self._rr: dict[str, int] = {}

    # -- table ---------------------------------------------------------------------------------------
    async def apply(self, table: RoutingTable) -> None:
        """Replace the table atomically: in-flight requests keep their instance, new ones use the new table."""
        s = table.settings
        bind = table.bind
        tls_key = (s.tls.cert, s.tls.key) if s.tls is not None else None
        redirect_key = (bind, s.http_port) if s.redirect_http else None
        # Both sockets are bound before anything changes, so a refused table leaves the old one serving.
        redirect_sock = None
        if redirect_key is not None and redirect_key != self.redirect_key:
            redirect_sock = _bind(*redirect_key, "redirect_http: ")
        if self.server is None or table.port != self.port or bind != self.bind or tls_key != self._tls_key:
            try:
                tls = TlsFiles(*tls_key) if tls_key is not None else None
                sock = _bind(bind, table.port, "")
            except TableError:
                if redirect_sock is not None:
                    redirect_sock.close()
                raise
            server = await self.loop.create_server(lambda: ClientConn(self), sock=sock,
                                                   ssl=tls.ctx if tls is not None else None, backlog=LISTEN_BACKLOG)
            old, self.server = self.server, server
            self.port, self.bind, self._tls_key, self.tls = table.port, bind, tls_key, tls
            if old is not None:
                old.close()  # stops accepting; accepted connections live on
        if redirect_key != self.redirect_key:
            await self._apply_redirect(redirect_key, redirect_sock)
        now = monotonic()
        fresh: dict[tuple[str, str], Instance] = {}
        for pool in table.pools:
            for spec in pool.instances:
                key = (pool.release, spec.id)
                inst = self.instances.get(key)
                if inst is None or inst.host != spec.host or inst.port != spec.port:
                    old_retired = self.retired.pop(key, None)
                    if old_retired is not None and old_retired[0].host == spec.host \
                            and old_retired[0].port == spec.port:
                        inst = old_retired[0]
                        inst.retired = False
                    else:
                        inst = Instance(self.name, pool.release, pool.role, spec.id, spec.host, spec.port,
                                        spec.ready)
                inst.role = pool.role
                inst.ready = spec.ready
                fresh[key] = inst
        for key, inst in self.instances.items():
            if fresh.get(key) is not inst:
                inst.retired = True
                inst.close_idle()
                self.retired[key] = (inst, now)
        for key in [k for k, (_, t) in self.retired.items() if now - t > RETIRED_KEEP_S]:
            del self.retired[key]
        self.instances = fresh
        self.table = table
        sticky = table.sticky
        self.sticky_cookie = sticky.cookie if sticky is not None else None
        self._apply_settings(s)
        self.sticky_header = sticky.header.lower().encode() if sticky is not None and sticky.header else None
        self.draining &= {p.release for p in table.pools}
        self.set_weights(table.effective_weights())

    async def _apply_redirect(self, key: tuple[str, int] | None, sock: socket.socket | None) -> None:
        """``redirect_http``: a plain listener on ``http_port`` answering 308 to https on our port."""
        server = None
        if sock is not None:
            server = await self.loop.create_server(lambda: RedirectConn(self), sock=sock, backlog=LISTEN_BACKLOG)
        old, self.redirect, self.redirect_key = self.redirect, server, key
        if old is not None:
            old.close()

    def _timeouts(self, s: RouterEnvSpec) -> None:
        self.header_timeout = float(s.header_timeout)
        self.idle_timeout = float(s.idle_timeout)
        self.response_timeout = float(s.response_timeout)

    def _apply_settings(self, s: RouterEnvSpec) -> None:
        self.settings = s
        self._timeouts(s)
        self.limits = Limits(s.max_request_line, s.max_header_size, s.max_headers, s.max_body_size)
        self.max_pause = s.max_pause
        self.headers = HeaderPolicy.for_env(self.name, s, self.sticky_cookie)
        log = self.router.access_log
        self.alog_sample = s.access_log.sample if (log is not None and s.access_log.enabled) else 0.0
        if s.trusted_proxies != self.settings_proxies:
            self.settings_proxies = list(s.trusted_proxies)
            self.proxies = TrustedProxies(s.trusted_proxies)
        if s.rate_limit != self._limit_spec:
            self._limit_spec = s.rate_limit
            self.limiter = RateLimiter(s.rate_limit) if s.rate_limit is not None else None

    def set_weights(self, weights: dict[str, float]) -> None:
        for rel, w in weights.items():
            if w > 0:
                self.draining.discard(rel)  # a release given traffic again is back in rotation
        self.weights = dict(weights)
        self._rebuild()

    def _rebuild(self) -> None:
        by_rel: dict[str, list[Instance]] = {}
        for inst in self.instances.values():
            if inst.ready and not inst.draining and inst.release not in self.draining:
                by_rel.setdefault(inst.release, []).append(inst)
        for insts in by_rel.values():
            insts.sort(key=lambda i: i.id)
        eligible = [(rel, w) for rel, w in sorted(self.weights.items()) if w > 0 and by_rel.get(rel)]
        self._by_rel = by_rel
        self._swrr = [_Share(rel, w) for rel, w in eligible]
        self._total = sum(w for _, w in eligible)
        cum, acc = [], 0.0
        for rel, w in eligible:
            acc += w
            cum.append((acc, rel))
        self._cum = cum

    # -- routing -------------------------------------------------------------------------------------
    def pick(self, head: RequestHead, now: float, exclude: Instance | None) -> tuple[Instance | None, str | None]:
        """Choose an instance for a request; also returns a sticky cookie value to set, if any."""
        swrr = self._swrr
        if not swrr:
            return None, None
        cookie_to_set = None
        rel: str | None = None
        if self.sticky_cookie is not None:
            rel = self._cookie_release(head)
            if rel is None or rel not in self._by_rel or self.weights.get(rel, 0) <= 0:
                rel = self._swrr_next()
                cookie_to_set = rel
        elif self.sticky_header is not None:
            value = head.header(self.sticky_header)
            if value is not None:
                h = crc32(value)
                pos = (h % 10000) / 10000.0 * self._total
                rel = next((r for c, r in self._cum if pos < c), self._cum[-1][1])
                inst = self._pick_in(rel, now, exclude, h)
                if inst is not None:
                    return inst, None
        if rel is None:
            rel = swrr[0].release if len(swrr) == 1 else self._swrr_next()
        inst = self._pick_in(rel, now, exclude, None)
        if inst is None:
            for other in self._by_rel:
                if other != rel and self.weights.get(other, 0) > 0:
                    inst = self._pick_in(other, now, exclude, None)
                    if inst is not None:
                        break
        return inst, cookie_to_set

    def _swrr_next(self) -> str:
        # Smooth weighted round robin (as nginx): exact shares, evenly interleaved.
        best = None
        for share in self._swrr:
            share.current += share.weight
            if best is None or share.current > best.current:
                best = share
        assert best is not None
        best.current -= self._total
        return best.release

    def _pick_in(self, rel: str, now: float, exclude: Instance | None, h: int | None) -> Instance | None:
        insts = self._by_rel.get(rel)
        if not insts:
            return None
        n = len(insts)
        start = (h if h is not None else self._rr.get(rel, 0)) % n
        if h is None:
            self._rr[rel] = start + 1
        fallback = None
        for k in range(n):
            inst = insts[(start + k) % n]
            if inst is exclude:
                continue
            if inst.down_until > now:
                fallback = fallback or inst
                continue
            return inst
        return fallback

    def _cookie_release(self, head: RequestHead) -> str | None:
        raw = head.cookie
        if raw is None or self.sticky_cookie is None:
            return None
        prefix = self.sticky_cookie.encode() + b"="
        for part in raw.split(b";"):
            part = part.strip()
            if part.startswith(prefix):
                return part[len(prefix):].decode("latin-1")
        return None

    # -- control operations --------------------------------------------------------------------------
    def inflight(self, release: str, instance: str | None = None) -> int:
        n = 0
        for inst in self.all_instances():
            if inst.release == release and (instance is None or inst.id == instance):
                n += inst.series.inflight
        return n

    def all_instances(self) -> list[Instance]:
        return [*self.instances.values(), *(i for i, _ in self.retired.values())]

    def start_drain(self, release: str, instance: str | None) -> None:
        if instance is None:
            self.draining.add(release)
        else:
            inst = self.instances.get((release, instance))
            if inst is not None:
                inst.draining = True
        self._rebuild()

    def finish_drain(self, release: str, instance: str | None) -> None:
        for inst in self.instances.values():
            if inst.release == release and (instance is None or inst.id == instance):
                inst.close_idle()

    def pause(self, max_pause: float | None) -> None:
        if max_pause is not None:
            self.max_pause = max_pause
        if self.paused is None:
            self.paused = self.loop.create_future()

    def resume(self) -> None:
        fut, self.paused = self.paused, None
        self.max_pause = self.settings.max_pause
        if fut is not None and not fut.done():
            fut.set_result(None)

    def set_maintenance(self, on: bool, message: str, allow: tuple[str, ...] = (), retry_after: int = 0) -> None:
        if not on:
            self.maintenance = None
            self.maintenance_allow = TrustedProxies()
            return
        self.maintenance_allow = TrustedProxies(allow)
        self.maintenance_extra = b"Retry-After: %d\r\n" % max(1, retry_after or 300)
        text = html.escape(message or "This service is down for maintenance. Please try again soon.")
        self.maintenance = (
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>"
            f"<body><h1>Maintenance</h1><p>{text}</p></body></html>\n"
        ).encode()

    def log_access(self, head: RequestHead, inst: Instance | None, status: int, dur: float, bytes_in: int,
                   bytes_out: int, ip: bytes, rid: bytes | None, trace: bytes | None, span: bytes | None,
                   now: float) -> None:
        log = self.router.access_log
        if log is None or not self.alog_sample:
            return
        log.add((now + self.router.wall_off, self.name, inst.release if inst else None,
                 inst.id if inst else None, head.method, head.target, status, dur, bytes_in, bytes_out, ip, rid,
                 trace, span))

    def sweep(self, now: float) -> None:
        """Once a second: enforce deadlines, expire idle upstream connections, prune rate-limit state."""
        for conn in list(self.conns):
            if conn.dkind and conn.deadline < now:
                conn.on_deadline(now)
            ex = conn.ex
            if ex is not None and ex.resp_deadline and ex.resp_deadline < now and not ex.done:
                ex.on_response_timeout()
        for inst in self.instances.values():
            inst.sweep(now)
        if self.tls is not None:
            self.tls.check()  # a renewed certificate at the same paths
        if self.limiter is not None and int(now) % 60 == 0:
            self.limiter.prune(now)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.redirect is not None:
            self.redirect.close()
            self.redirect, self.redirect_key = None, None
