"""One proxied request on its way through: routing, the upstream connection, both bodies, the ending.

Created by ``ClientConn`` (proxy.py) when a request head arrives; the bytes it writes come from the sans-io
rewriting in headers.py, the events it consumes from h1.py. A request picks its instance from the
environment's table at the moment its head arrives, so a table swap applies to the next request on every
keep-alive connection while in-flight ones finish where they started.
"""

from __future__ import annotations

import asyncio
from random import random
from time import monotonic
from typing import TYPE_CHECKING, Final

from shipyard.router import tracing
from shipyard.router.h1 import BODY, END, HEAD, UPGRADE, RequestHead
from shipyard.router.h1response import INTERIM, ResponseEvent, ResponseHead
from shipyard.router.headers import (
    CONTINUE_100,
    LAST_CHUNK,
    chunk,
    may_resend,
    request_head,
    response_head,
    simple_response,
)
from shipyard.router.upstream import Instance, UpstreamConn

if TYPE_CHECKING:
    from shipyard.router.proxy import ClientConn

_MAX_BUFFERED_BODY: Final = 1024 * 1024


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

    def route(self, exclude: Instance | None = None, now: float = 0.0) -> None:  # now: the head's arrival
        env = self.env
        now = now or monotonic()
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
            self.resp_deadline = monotonic() + self.env.response_timeout
        if self.conn.write_paused:
            t.pause_reading()

    def _upstream_head(self) -> bytes:
        head = self.head
        inst = self.inst
        assert inst is not None
        rid, tp, self.trace, self.span = tracing.ids(head.request_id, head.traceparent)
        self.rid = rid
        return request_head(head, self.conn.ip, self.env.headers, rid, tp, inst.host, inst.port, self.conn.keep_xff)

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
        self.conn.body_done()
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
            now = monotonic() if self.head.has_body else self.t0  # bodiless: ended in its head's read
            self.resp_deadline = now + self.env.response_timeout

    def client_upgrade_data(self, data: bytes) -> None:
        if data:
            self.upgrade_buf = [*(self.upgrade_buf or ()), data]

    def client_error(self, status: int, reason: str) -> None:
        """The request turned out malformed (or too slow / too large) after it was routed."""
        self.close_client = True
        if self.up is not None:
            self._drop_upstream()
            self.upstream_error = False
        if self.resp_started:
            self._finish(abort=True)
        else:
            self.respond_local(status, reason)

    def client_gone(self) -> None:
        if not self.done:
            self._drop_upstream()
            self._finish(abort=True)

    # -- response ------------------------------------------------------------------------------------
    def upstream_events(self, events: list[ResponseEvent]) -> None:
        conn = self.conn
        out: list[bytes] = []
        for ev in events:  # consumed whole: each branch that stops early clears them before acting
            if ev[0] == BODY:
                payload = ev[1]
                self.bytes_out += len(payload)
                if self.rchunked:
                    out += chunk(payload)
                else:
                    out.append(payload)
            elif ev[0] == HEAD:
                self._response_head(ev[1], out)
            elif ev[0] == END:
                if self.status == 101:
                    continue  # the tunnel starts with the UPGRADE event
                if self.rchunked:
                    out.append(LAST_CHUNK if ev[1] is None else b"0\r\n" + ev[1] + b"\r\n")  # + trailers
                if out and conn.t is not None:
                    conn.t.write(b"".join(out))
                events.clear()
                self._finish()
                return
            elif ev[0] == UPGRADE:
                if out and conn.t is not None:
                    conn.t.write(b"".join(out))
                events.clear()
                self._start_tunnel(ev[1])
                return
            elif ev[0] == INTERIM:
                # 103 Early Hints, 102...: HTTP/1.1 clients only; a 100 when we sent our own is dropped.
                head = self.head
                if head.version == "1.1" and not (head.expect_continue and ev[1].startswith(b"HTTP/1.1 100 ")):
                    out.append(ev[1])
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
        events.clear()
        if out and conn.t is not None:
            conn.t.write(b"".join(out) if len(out) > 1 else out[0])

    def _response_head(self, rh: ResponseHead, out: list[bytes]) -> None:
        self.resp_started = True
        self.resp_deadline = 0.0
        self.status = rh.status
        self.up_keep = rh.keep_alive
        head = self.head
        close = self.close_client or not head.keep_alive or not self.req_done or head.upgrade is not None
        data, self.rchunked, close = response_head(rh, head, self.env.headers, self.rid, self.set_cookie, close)
        if close:
            self.close_client = True
        out.append(data)

    def _start_tunnel(self, rest: bytes) -> None:
        up = self.up
        assert up is not None
        self._finish(tunnel=True)
        up.ex = None
        self.conn.start_tunnel(up, rest, self.upgrade_buf)
        self.upgrade_buf = None

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
        if up is not None and up.reused and not self.retried and may_resend(self.head):
            # A pooled connection the instance had just closed: nothing was processed, send it again.
            self.retried = True
            if self.inst is not None:
                self.inst.series.note_upstream_error(self.env.router.wall_sec(monotonic()))
            self.route()
            return
        self.upstream_error = True
        self.respond_local(502, "upstream closed the connection")

    def upstream_stalled(self) -> None:
        """The instance stopped taking the request body (our write buffer to it is full). A frozen or
        wedged instance must not hold the request until the client gives up: from now on it has
        response_timeout to move again or to answer."""
        if not self.resp_started and not self.resp_deadline:
            self.resp_deadline = monotonic() + self.env.response_timeout

    def upstream_moving(self) -> None:
        if not self.req_done and not self.resp_started:
            self.resp_deadline = 0.0  # still uploading: the clock starts again once the body is complete

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
        sec = int(now + env.router.wall_off)  # Router.wall_sec inlined: an interpreted call per request
        if inst is not None:
            inst.series.inflight -= 1
            inst.series.record(sec, self.status if not abort else 0, dur, self.bytes_in, self.bytes_out,
                               self.upstream_error)
        else:
            env.unrouted.record(sec, self.status if not abort else 0, dur, self.bytes_in, self.bytes_out,
                                self.upstream_error)
        if env.alog_sample > 0.0 and (env.alog_sample >= 1.0 or random() < env.alog_sample):
            env.log_access(self.head, inst, self.status if not abort else 0, dur, self.bytes_in,
                           self.bytes_out, conn.client, self.rid, self.trace, self.span, now)
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

