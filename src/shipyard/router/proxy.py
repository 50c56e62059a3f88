"""The I/O driver: one ``ClientConn`` per client connection, one ``Exchange`` per proxied request.

Framing is decided by the sans-io parsers in h1.py; this module moves bytes and keeps state. Requests on
a connection are handled one at a time in arrival order (pipelined ones wait in the parser's event queue),
and each request picks its instance from the environment's table *at the moment its head arrives*, so a
table swap applies to the next request on every keep-alive connection while in-flight ones finish where
they started.

Timeouts are deadlines (floats) checked by the router's once-a-second sweep: no timer per request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from random import random
from time import monotonic
from typing import TYPE_CHECKING, Any

from shipyard.router import tracing
from shipyard.router.h1 import (
    BODY,
    CONTINUE_100,
    END,
    ERROR,
    HEAD,
    LAST_CHUNK,
    UPGRADE,
    RequestHead,
    RequestParser,
    ResponseHead,
    chunk,
    simple_response,
)
from shipyard.router.upstream import Instance, UpstreamConn

if TYPE_CHECKING:
    from shipyard.router.env import EnvRuntime

# Client-side deadline kinds.
D_NONE, D_HEAD, D_IDLE, D_BODY = 0, 1, 2, 3
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_MAX_QUEUED_EVENTS = 64
_MAX_BUFFERED_BODY = 1024 * 1024


class ClientConn(asyncio.Protocol):
    __slots__ = ("env", "loop", "t", "parser", "events", "ex", "closed", "ip", "deadline", "dkind", "tunnel",
                 "_blocked", "_paused", "_wpaused", "_eof")

    def __init__(self, env: EnvRuntime) -> None:
        self.env = env
        self.loop = env.loop
        self.t: asyncio.Transport | None = None
        self.parser = RequestParser(env.limits)
        self.events = self.parser.events
        self.ex: Exchange | None = None
        self.closed = False
        self.ip = b""
        self.deadline = 0.0
        self.dkind = D_NONE
        self.tunnel: UpstreamConn | None = None
        self._blocked = False  # the upstream cannot take more request bytes
        self._paused = False  # reading is paused (blocked, or too many queued events)
        self._wpaused = False  # the client's socket buffer is full
        self._eof = False  # the client half-closed: answer what it sent, then close

    # -- asyncio protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.t = transport
        peer = transport.get_extra_info("peername")
        self.ip = (peer[0] if peer else "").encode()
        transport.set_write_buffer_limits(high=256 * 1024)
        self.env.conns.add(self)
        self.deadline = monotonic() + self.env.settings.header_timeout
        self.dkind = D_HEAD

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            if tunnel.t is not None:
                tunnel.t.write(data)
            return
        dkind = self.dkind
        if dkind == D_IDLE:
            self.deadline = monotonic() + self.env.settings.header_timeout
            self.dkind = D_HEAD
        elif dkind == D_BODY:
            self.deadline = monotonic() + self.env.settings.body_timeout
        self.parser.feed(data)
        self.process()

    def eof_received(self) -> bool | None:
        if self.tunnel is not None:
            t = self.tunnel.t
            if t is not None and t.can_write_eof():
                t.write_eof()
            return True
        if self.ex is None and not self.events:
            return None  # nothing pending: close
        self._eof = True
        return True  # keep writing the answers

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.t = None
        self.env.conns.discard(self)
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.tunnel = None
            tunnel.close()
        ex = self.ex
        if ex is not None:
            ex.client_gone()

    def pause_writing(self) -> None:
        self._wpaused = True
        tunnel = self.tunnel
        if tunnel is not None and tunnel.t is not None:
            tunnel.t.pause_reading()
        elif self.ex is not None and self.ex.up is not None and self.ex.up.t is not None:
            self.ex.up.t.pause_reading()

    def resume_writing(self) -> None:
        self._wpaused = False
        tunnel = self.tunnel
        if tunnel is not None and tunnel.t is not None:
            tunnel.t.resume_reading()
        elif self.ex is not None and self.ex.up is not None and self.ex.up.t is not None:
            self.ex.up.t.resume_reading()

    # -- flow control --------------------------------------------------------------------------------
    def block_reading(self, blocked: bool) -> None:
        self._blocked = blocked
        self._update_reading()

    def _update_reading(self) -> None:
        want_pause = self._blocked or len(self.events) > _MAX_QUEUED_EVENTS
        if want_pause != self._paused and self.t is not None:
            self._paused = want_pause
            if want_pause:
                self.t.pause_reading()
            else:
                self.t.resume_reading()

    def close(self) -> None:
        self.closed = True
        self.dkind = D_NONE
        self.parser.done = True
        self.events.clear()
        if self.t is not None:
            self.t.close()

    # -- request processing --------------------------------------------------------------------------
    def process(self) -> None:
        events = self.events
        while events and not self.closed:
            kind, payload = events[0]
            ex = self.ex
            if kind == HEAD:
                if ex is not None:
                    break  # pipelined: answered after the current one
                events.popleft()
                self._begin(payload)
            elif kind == BODY:
                events.popleft()
                if ex is not None:
                    ex.client_body(payload)
            elif kind == END:
                events.popleft()
                if ex is not None:
                    ex.client_end()
            elif kind == ERROR:
                if ex is not None:
                    if not ex.req_done:
                        events.popleft()
                        ex.client_error(payload[0], payload[1])
                    break
                events.popleft()
                self.local_response(None, payload[0], payload[1], close=True)
                return
            else:  # UPGRADE: bytes after an Upgrade request, for the tunnel
                events.popleft()
                if ex is not None:
                    ex.client_upgrade_data(payload)
                else:
                    self.close()
        if self._paused or len(events) > _MAX_QUEUED_EVENTS:
            self._update_reading()

    def _begin(self, head: RequestHead) -> None:
        env = self.env
        now = monotonic()
        if head.has_body:
            self.dkind = D_BODY
            self.deadline = now + env.settings.body_timeout
        else:
            self.dkind = D_NONE
        if env.maintenance is not None:
            self.local_response(head, 503, "", close=head.has_body, body=env.maintenance,
                                content_type=b"text/html; charset=utf-8")
            return
        limiter = env.limiter
        if limiter is not None:
            wait = limiter.check(self.ip.decode(), head.target, now)
            if wait:
                self.local_response(head, 429, "too many requests", close=head.has_body,
                                    extra=b"Retry-After: %d\r\n" % wait)
                return
        ex = Exchange(self, head, now)
        self.ex = ex
        if env.paused is not None:
            ex.hold(env.paused)
        else:
            ex.route()

    def local_response(
        self,
        head: RequestHead | None,
        status: int,
        message: str,
        *,
        close: bool,
        body: bytes | None = None,
        content_type: bytes = b"text/plain; charset=utf-8",
        extra: bytes = b"",
        started: float | None = None,
    ) -> None:
        """Answer from the router itself (not attributed to any release)."""
        env = self.env
        close = close or head is None or not head.keep_alive
        payload = body if body is not None else (message + "\n").encode()
        data = simple_response(status, payload, close=close, content_type=content_type, extra=extra,
                               head_only=head is not None and head.method == b"HEAD")
        if self.t is not None:
            self.t.write(data)
        now = monotonic()
        dur = now - started if started is not None else 0.0
        env.unrouted.record(env.router.wall_sec(now), status, dur, 0, len(data))
        if head is not None:
            env.log_access(head, None, status, dur, 0, len(data), self.ip, None, None, None)
        if close:
            self.close()
        else:
            self.idle(now)

    def idle(self, now: float) -> None:
        """The current exchange is over and the connection stays open: go on with queued requests."""
        self.ex = None
        self.dkind = D_IDLE
        self.deadline = now + self.env.settings.idle_timeout
        if self.events:
            self.process()
        if self._eof and self.ex is None and not self.closed:
            self.close()
            return
        if self._paused:
            self._update_reading()

    def on_deadline(self) -> None:
        kind = self.dkind
        ex = self.ex
        if kind == D_HEAD and self.parser.in_message:
            self.local_response(None, 408, "request header timeout", close=True)
        elif kind == D_BODY and ex is not None and not ex.req_done:
            ex.client_error(408, "request body timeout")
        else:
            self.close()


class Exchange:
    """One request on its way through: routing, the upstream connection, streaming both bodies."""

    __slots__ = ("conn", "env", "head", "t0", "inst", "up", "req_done", "resp_started", "done", "buf",
                 "buf_size", "retried", "status", "bytes_in", "bytes_out", "rchunked", "close_client",
                 "resp_deadline", "rid", "trace", "span", "set_cookie", "upgrade_buf", "upstream_error",
                 "connecting", "up_keep")

    def __init__(self, conn: ClientConn, head: RequestHead, t0: float) -> None:
        self.conn = conn
        self.env = conn.env
        self.head = head
        self.t0 = t0
        self.inst: Instance | None = None
        self.up: UpstreamConn | None = None
        self.req_done = False
        self.resp_started = False
        self.done = False
        self.buf: list[bytes] | None = None  # request body received before the upstream was attached
        self.buf_size = 0
        self.retried = False
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.rchunked = False
        self.close_client = False
        self.resp_deadline = 0.0
        self.rid: bytes | None = None
        self.trace: bytes | None = None
        self.span: bytes | None = None
        self.set_cookie: str | None = None
        self.upgrade_buf: list[bytes] | None = None
        self.upstream_error = False
        self.connecting = False
        self.up_keep = True

    # -- routing -------------------------------------------------------------------------------------
    def hold(self, paused: asyncio.Future[None]) -> None:
        asyncio.ensure_future(self._await_resume(paused))

    async def _await_resume(self, paused: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(paused), self.env.max_pause)
        except TimeoutError:
            if not self.done:
                self.respond_local(503, "paused for too long")
            return
        if not self.done:
            self.route()

    def route(self, exclude: Instance | None = None) -> None:
        env = self.env
        now = monotonic()
        inst, cookie = env.pick(self.head, now, exclude)
        if inst is None:
            if exclude is not None:
                self.upstream_error = True
                self.respond_local(502, "upstream connect failed")
            else:
                self.respond_local(503, "no ready instance")
            return
        if cookie is not None:
            self.set_cookie = cookie
        if self.inst is not None:
            self.inst.series.inflight -= 1
        self.inst = inst
        inst.series.inflight += 1
        up = inst.take_idle(now)
        if up is not None:
            self.attach(up)
        else:
            self.connecting = True
            asyncio.ensure_future(self._connect(inst))

    async def _connect(self, inst: Instance) -> None:
        loop = self.conn.loop
        try:
            _, up = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConn(inst), inst.host, inst.port),
                self.env.settings.connect_timeout,
            )
        except (TimeoutError, OSError):
            self.connecting = False
            now = monotonic()
            inst.down_until = now + 1.0
            if self.done:
                return
            if not self.retried:
                self.retried = True
                self.route(exclude=inst)
                if self.inst is not inst:  # another instance took it: count the failed attempt here
                    inst.series.note_upstream_error(self.env.router.wall_sec(now))
            else:
                self.upstream_error = True
                self.respond_local(502, "upstream connect failed")
            return
        self.connecting = False
        if self.done or self.inst is not inst:
            inst.put(up, monotonic())
            return
        self.attach(up)

    def attach(self, up: UpstreamConn) -> None:
        self.up = up
        up.ex = self
        head = self.head
        parser = up.parser
        parser.reset()
        parser.no_body = head.method == b"HEAD"
        t = up.t
        assert t is not None
        t.write(self._upstream_head())
        buf = self.buf
        if buf:
            t.writelines(buf)
            self.buf = None
            self.buf_size = 0
            self.conn.block_reading(False)
        if head.expect_continue and not self.req_done and head.version == "1.1" and self.conn.t is not None:
            self.conn.t.write(CONTINUE_100)
        if self.req_done:
            self.resp_deadline = monotonic() + self.env.settings.response_timeout
        if self.conn._wpaused:
            t.pause_reading()

    def _upstream_head(self) -> bytes:
        head = self.head
        env = self.env
        conn = self.conn
        rid = self.rid = tracing.request_id(head.request_id)
        tp, self.trace, self.span = tracing.traceparent(head.traceparent)
        parts = [head.method, b" ", head.target, b" HTTP/1.1\r\n"]
        parts += [line for _, line in head.lines]
        xff = conn.ip if head.xff is None else head.xff + b", " + conn.ip
        if head.host is None:
            inst = self.inst
            assert inst is not None
            parts.append(b"Host: %s:%d\r\n" % (inst.host.encode(), inst.port))
        else:
            parts += (b"X-Forwarded-Host: ", head.host, b"\r\n")
        parts += (b"X-Forwarded-For: ", xff, env.fwd_proto_line, b"X-Request-Id: ", rid, b"\r\ntraceparent: ",
                  tp, b"\r\n")
        if head.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        if head.upgrade is not None:
            parts += (b"Connection: upgrade\r\nUpgrade: ", head.upgrade, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    # -- request body ----------------------------------------------------------------------------------
    def client_body(self, data: bytes) -> None:
        self.bytes_in += len(data)
        up = self.up
        if up is not None:
            if up.t is not None:
                if self.head.chunked:
                    up.t.writelines(chunk(data))
                else:
                    up.t.write(data)
            return
        if self.buf is None:
            self.buf = []
        if self.head.chunked:
            self.buf += chunk(data)
        else:
            self.buf.append(data)
        self.buf_size += len(data)
        if self.buf_size > _MAX_BUFFERED_BODY:
            self.conn.block_reading(True)

    def client_end(self) -> None:
        self.req_done = True
        conn = self.conn
        if conn.dkind == D_BODY:
            conn.dkind = D_NONE
        if self.head.chunked:
            up = self.up
            if up is not None and up.t is not None:
                up.t.write(LAST_CHUNK)
            else:
                if self.buf is None:
                    self.buf = []
                self.buf.append(LAST_CHUNK)
        if self.done:
            return
        if self.up is not None:
            self.resp_deadline = monotonic() + self.env.settings.response_timeout

    def client_upgrade_data(self, data: bytes) -> None:
        if data:
            if self.upgrade_buf is None:
                self.upgrade_buf = []
            self.upgrade_buf.append(data)

    def client_error(self, status: int, reason: str) -> None:
        """The request turned out malformed (or too slow / too large) after it was routed."""
        self.close_client = True
        if self.up is not None:
            self.up.ex = None
            self.up.close()
            self.up = None
            self.upstream_error = False
        if self.resp_started:
            self._finish(abort=True)
        else:
            self.respond_local(status, reason)

    def client_gone(self) -> None:
        if self.done:
            return
        up = self.up
        if up is not None:
            up.ex = None
            up.close()
            self.up = None
        self._finish(abort=True)

    # -- response ------------------------------------------------------------------------------------
    def upstream_events(self, events: deque[tuple[int, Any]]) -> None:
        conn = self.conn
        out: list[bytes] = []
        while events:
            kind, payload = events.popleft()
            if kind == BODY:
                self.bytes_out += len(payload)
                if self.rchunked:
                    out += chunk(payload)
                else:
                    out.append(payload)
            elif kind == HEAD:
                self._response_head(payload, out)
            elif kind == END:
                if self.status == 101:
                    continue  # the tunnel starts with the UPGRADE event
                if self.rchunked:
                    out.append(LAST_CHUNK)
                if out and conn.t is not None:
                    conn.t.write(b"".join(out))
                events.clear()
                self._finish()
                return
            elif kind == UPGRADE:
                if out and conn.t is not None:
                    conn.t.write(b"".join(out))
                events.clear()
                self._start_tunnel(payload)
                return
            else:  # ERROR: malformed response
                events.clear()
                if out and conn.t is not None:
                    conn.t.write(b"".join(out))
                self.upstream_error = True
                self._drop_upstream()
                if self.resp_started:
                    self.close_client = True
                    self._finish(abort=True)
                else:
                    self.respond_local(502, "bad response from upstream")
                return
        if out and conn.t is not None:
            conn.t.write(b"".join(out) if len(out) > 1 else out[0])

    def _response_head(self, rh: ResponseHead, out: list[bytes]) -> None:
        self.resp_started = True
        self.resp_deadline = 0.0
        status = self.status = rh.status
        self.up_keep = rh.keep_alive
        head = self.head
        env = self.env
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, rh.reason)]
        sec = env.sec_names
        parts += [line for _, line in rh.lines]
        if sec:
            present = [ln for ln, _ in rh.lines if ln in sec]
            if present:  # the app's own value wins
                parts += [line for ln, line in env.sec_lines if ln not in present]
            else:
                parts.append(env.sec_block)
        if self.rid is not None:
            parts += (b"X-Request-Id: ", self.rid, b"\r\n")
        if self.set_cookie is not None:
            parts.append(env.sticky_cookie_line(self.set_cookie))
        if status == 101:
            parts += (b"Connection: upgrade\r\nUpgrade: ", rh.upgrade or b"websocket", b"\r\n\r\n")
            out.append(b"".join(parts))
            return
        close = self.close_client or not head.keep_alive or not self.req_done or head.upgrade is not None
        no_body = head.method == b"HEAD" or status == 204 or status == 304 or status < 200
        if not no_body and (rh.chunked or rh.until_close):
            if head.version == "1.1":
                self.rchunked = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                close = True  # HTTP/1.0 client: the body ends when we close
        if close:
            self.close_client = True
            parts.append(b"Connection: close\r\n\r\n")
        elif head.version == "1.0":
            parts.append(b"Connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        out.append(b"".join(parts))

    def _start_tunnel(self, rest: bytes) -> None:
        """101 Switching Protocols: from now on bytes flow unparsed both ways until either side closes."""
        conn = self.conn
        up = self.up
        assert up is not None
        self._finish(tunnel=True)
        if conn.t is None or up.t is None:
            up.close()
            conn.close()
            return
        up.ex = None
        up.tunnel = conn
        conn.tunnel = up
        conn.dkind = D_NONE
        if rest:
            conn.t.write(rest)
        if self.upgrade_buf:
            up.t.writelines(self.upgrade_buf)
            self.upgrade_buf = None
        if conn._eof and up.t.can_write_eof():
            up.t.write_eof()  # the client already finished sending
        pending = conn.events
        pending.clear()
        conn.block_reading(False)

    def upstream_lost(self) -> None:
        """The upstream connection closed before the response ended."""
        up = self.up
        self.up = None
        if up is not None:
            up.ex = None
        if self.done:
            return
        if self.resp_started:
            self.upstream_error = True
            self.close_client = True
            self._finish(abort=True)
            return
        head = self.head
        if (up is not None and up.reused and not self.retried and not head.has_body
                and head.method in _IDEMPOTENT):
            # A pooled connection the instance had just closed: nothing was processed, send it again.
            self.retried = True
            if self.inst is not None:
                self.inst.series.note_upstream_error(self.env.router.wall_sec(monotonic()))
            self.route()
            return
        self.upstream_error = True
        self.respond_local(502, "upstream closed the connection")

    def on_response_timeout(self) -> None:
        self.upstream_error = True
        self._drop_upstream()
        self.respond_local(504, "upstream response timeout")

    def _drop_upstream(self) -> None:
        up = self.up
        self.up = None
        if up is not None:
            up.ex = None
            up.close()

    # -- endings -------------------------------------------------------------------------------------
    def respond_local(self, status: int, message: str) -> None:
        """An error answer from the router on behalf of the routed release (502, 503, 504...)."""
        if self.done:
            return
        conn = self.conn
        head = self.head
        close = self.close_client or not self.req_done or not head.keep_alive
        data = simple_response(status, (message + "\n").encode(), close=close,
                               head_only=head.method == b"HEAD")
        if conn.t is not None:
            conn.t.write(data)
        self.status = status
        self.close_client = close
        self.bytes_out = len(data)
        self._drop_upstream()
        self._finish()

    def _finish(self, abort: bool = False, tunnel: bool = False) -> None:
        if self.done:
            return
        self.done = True
        conn = self.conn
        env = self.env
        now = monotonic()
        dur = now - self.t0
        inst = self.inst
        if inst is not None:
            series = inst.series
            series.inflight -= 1
            series.record(env.router.wall_sec(now), self.status if not abort else 0, dur, self.bytes_in,
                          self.bytes_out, self.upstream_error)
        else:
            env.unrouted.record(env.router.wall_sec(now), self.status if not abort else 0, dur, self.bytes_in,
                                self.bytes_out, self.upstream_error)
        if env.alog_sample > 0.0 and (env.alog_sample >= 1.0 or random() < env.alog_sample):
            env.log_access(self.head, inst, self.status if not abort else 0, dur, self.bytes_in,
                           self.bytes_out, conn.ip, self.rid, self.trace, self.span)
        if tunnel:
            conn.ex = None
            return
        up = self.up
        if up is not None:
            self.up = None
            up.ex = None
            p = up.parser
            if (inst is not None and self.req_done and not abort and self.up_keep and not p.dirty
                    and not p.done and not up.closed):
                inst.put(up, now)
            else:
                up.close()
        if abort or self.close_client or not self.req_done:
            conn.ex = None
            conn.close()
        else:
            conn.idle(now)

