"""The client side of the I/O driver: one ``ClientConn`` per client connection.

Framing is decided by the sans-io parser in h1.py and the bytes written by headers.py; this module moves
bytes and keeps state. Requests on a connection are handled one at a time in arrival order (pipelined ones
wait in the parser's event queue); each gets an ``Exchange`` (exchange.py) when its head is next.

Timeouts are deadlines (floats) checked by the router's once-a-second sweep: no timer per request.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import TYPE_CHECKING, Final, cast

from shipyard.router.exchange import Exchange
from shipyard.router.h1 import BODY, END, ERROR, HEAD, RequestHead, RequestParser
from shipyard.router.headers import simple_response
from shipyard.router.upstream import UpstreamConn

if TYPE_CHECKING:
    from shipyard.router.env import EnvRuntime

# Client-side deadline kinds.
D_NONE, D_HEAD, D_IDLE, D_BODY = 0, 1, 2, 3
_MAX_QUEUED_EVENTS: Final = 64


class ClientConn(asyncio.Protocol):
    __slots__ = ("env", "loop", "t", "parser", "events", "ex", "closed", "ip", "deadline", "dkind", "body_end",
                 "tunnel", "_blocked", "_paused", "write_paused", "_eof", "client", "keep_xff", "now")

    def __init__(self, env: EnvRuntime) -> None:
        self.env = env
        self.loop = env.loop
        self.t: asyncio.Transport | None = None
        self.parser = RequestParser(env.limits)
        self.events = self.parser.events
        self.ex: Exchange | None = None
        self.closed = False
        self.ip = b""  # the TCP peer
        self.client = b""  # the current request's client: the peer, or from a trusted proxy's X-Forwarded-For
        self.keep_xff = False  # the peer is a trusted proxy: its X-Forwarded-For is kept (appended to)
        self.deadline = 0.0
        self.body_end = 0.0  # the whole request body must have arrived by then (body_deadline)
        self.dkind = D_NONE
        self.tunnel: UpstreamConn | None = None
        self._blocked = False  # the upstream cannot take more request bytes
        self._paused = False  # reading is paused (blocked, or too many queued events)
        self.write_paused = False  # the client's socket buffer is full
        self._eof = False  # the client half-closed: answer what it sent, then close
        self.now = 0.0  # when the bytes being processed arrived: one clock read per read, not per step

    # -- asyncio protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = self.t = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.ip = (peer[0] if peer else "").encode()
        transport.set_write_buffer_limits(high=256 * 1024)
        self.env.conns.add(self)
        self.deadline = monotonic() + self.env.header_timeout
        self.dkind = D_HEAD

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            if tunnel.t is not None:
                tunnel.t.write(data)
            return
        dkind = self.dkind
        now = self.now = monotonic()
        if dkind == D_IDLE:
            self.deadline = now + self.env.header_timeout
            self.dkind = D_HEAD
        elif dkind == D_BODY:
            deadline = now + self.env.settings.body_timeout
            self.deadline = deadline if deadline < self.body_end else self.body_end
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
        if self._abandoned():
            return None
        return True  # keep writing the answers

    def _abandoned(self) -> bool:
        """After the client's EOF: a request whose body is still incomplete never will be, so its exchange
        ends now (freeing the upstream connection and the in-flight count a drain waits for). An answer
        already under way (the instance did not wait for the body) is let through."""
        ex = self.ex
        if ex is None or ex.req_done or ex.resp_started:
            return False
        ex.client_gone()
        self.close()
        return True

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
        self.write_paused = True
        tunnel = self.tunnel
        if tunnel is not None and tunnel.t is not None:
            tunnel.t.pause_reading()
        elif self.ex is not None and self.ex.up is not None and self.ex.up.t is not None:
            self.ex.up.t.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
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
            ev = events[0]
            ex = self.ex
            if ev[0] == HEAD:
                if ex is not None:
                    break  # pipelined: answered after the current one
                events.popleft()
                self._begin(ev[1])
            elif ev[0] == BODY:
                events.popleft()
                if ex is not None:
                    ex.client_body(ev[1])
            elif ev[0] == END:
                events.popleft()
                if ex is not None:
                    ex.client_end()
            elif ev[0] == ERROR:
                status, reason = ev[1]
                if ex is not None:
                    if not ex.req_done:
                        events.popleft()
                        ex.client_error(status, reason)
                    break
                events.popleft()
                self.local_response(None, status, reason, close=True)
                return
            else:  # UPGRADE: bytes after an Upgrade request, for the tunnel
                events.popleft()
                if ex is not None:
                    ex.client_upgrade_data(ev[1])
                else:
                    self.close()
        if self._paused or len(events) > _MAX_QUEUED_EVENTS:
            self._update_reading()

    def _begin(self, head: RequestHead) -> None:
        env = self.env
        now = self.now  # set by data_received, or by idle() for a pipelined head
        if head.has_body:
            self.dkind = D_BODY
            self.body_end = now + env.settings.body_deadline
            self.deadline = min(now + env.settings.body_timeout, self.body_end)
        else:
            self.dkind = D_NONE
        if env.maintenance is not None and not env.maintenance_allow.trusted(self.ip):
            self.local_response(head, 503, "", close=head.has_body, body=env.maintenance,
                                content_type=b"text/html; charset=utf-8", extra=env.maintenance_extra)
            return
        proxies = env.proxies
        if proxies and proxies.trusted(self.ip):
            self.keep_xff = True
            self.client = proxies.client(self.ip, head.xff)
        else:
            self.keep_xff = False
            self.client = self.ip
        limiter = env.limiter
        if limiter is not None:
            wait = limiter.check(self.client.decode(), head.target, now)
            if wait:
                self.local_response(head, 429, "too many requests", close=head.has_body,
                                    extra=b"Retry-After: %d\r\n" % wait)
                return
        ex = Exchange(self, head, now)
        self.ex = ex
        if env.paused is not None:
            ex.hold(env.paused)
        else:
            ex.route(now=now)

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
            env.log_access(head, None, status, dur, 0, len(data), self.client, None, None, None, now)
        if close:
            self.close()
        else:
            self.idle(now)

    def idle(self, now: float) -> None:
        """The current exchange is over and the connection stays open: go on with queued requests."""
        self.ex = None
        self.dkind = D_IDLE
        self.deadline = now + self.env.idle_timeout
        if self.events:
            self.now = now
            self.process()
        if self._eof and not self.closed and (self.ex is None or self._abandoned()):
            self.close()
            return
        if self._paused:
            self._update_reading()

    def start_tunnel(self, up: UpstreamConn, rest: bytes, early: list[bytes] | None) -> None:
        """101 Switching Protocols: from now on bytes flow unparsed both ways until either side closes.
        ``rest`` came from the upstream after its head, ``early`` from the client after its request."""
        if self.t is None or up.t is None:
            up.close()
            self.close()
            return
        up.tunnel = self
        self.tunnel = up
        self.dkind = D_NONE
        if rest:
            self.t.write(rest)
        if early:
            up.t.writelines(early)
        if self._eof and up.t.can_write_eof():
            up.t.write_eof()  # the client already finished sending
        self.events.clear()
        self.block_reading(False)

    def body_done(self) -> None:
        """The request body is complete: no client deadline until the answer is written."""
        if self.dkind == D_BODY:
            self.dkind = D_NONE

    def on_deadline(self, now: float) -> None:
        kind = self.dkind
        ex = self.ex
        if kind == D_HEAD and self.parser.in_message:
            self.local_response(None, 408, "request header timeout", close=True)
        elif kind == D_BODY and ex is not None and not ex.req_done:
            if now >= self.body_end:
                ex.client_error(408, "request body deadline")
            elif self._blocked:
                # We stopped reading (the instance is not taking the body): not the client's delay. The
                # instance's side is bounded by response_timeout (Exchange.upstream_stalled).
                self.deadline = min(now + self.env.settings.body_timeout, self.body_end)
            else:
                ex.client_error(408, "request body timeout")
        else:
            self.close()
