"""Connections to instances: one protocol object per TCP connection, pooled per instance (LIFO)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Final, cast

from shipyard.primitives.metrics import Series
from shipyard.router.h1response import ResponseParser

if TYPE_CHECKING:
    from shipyard.router.exchange import Exchange
    from shipyard.router.proxy import ClientConn

# Idle pooled connections older than this are not reused: app servers close idle keep-alive connections
# after a few seconds (gunicorn: 2 s), and reusing one just as it closes costs a retry or a 502.
POOL_IDLE_S: Final = 1.5
POOL_MAX_IDLE: Final = 256
# Linux only. An instance that writes its response head and body in two writes (http.server, Flask's dev
# server) holds the body back under Nagle until the head is acknowledged, and the kernel delays that ACK
# by up to 40 ms once the connection looks interactive. Linux re-arms delayed ACK after it fires, so the
# option is set again after every read that leaves the response unfinished (or in a tunnel); setting it
# also sends an ACK that is pending right now. A read that completes the response needs none: nothing
# more is coming, and the next request carries the ACK (this saves a syscall per ordinary request).
_QUICKACK: Final[int] = getattr(socket, "TCP_QUICKACK", 0)


class Instance:
    """Runtime state of one instance: its pool and its measurements; kept across table swaps."""

    __slots__ = ("id", "release", "role", "host", "port", "ready", "series", "idle", "retired", "down_until",
                 "draining")

    def __init__(self, env: str, release: str, role: str, iid: str, host: str, port: int, ready: bool) -> None:
        self.id = iid
        self.release = release
        self.role = role
        self.host = host
        self.port = port
        self.ready = ready
        self.series = Series(env, release, iid)
        self.idle: list[UpstreamConn] = []
        self.retired = False
        self.down_until = 0.0  # after a failed connect, skipped briefly
        self.draining = False

    def take_idle(self, now: float) -> UpstreamConn | None:
        idle = self.idle
        while idle:
            up = idle.pop()
            if up.closed:
                continue
            if now - up.last_used > POOL_IDLE_S:
                up.close()
                continue
            return up
        return None

    def put(self, up: UpstreamConn, now: float) -> None:
        if self.retired or up.closed or len(self.idle) >= POOL_MAX_IDLE:
            up.close()
            return
        up.last_used = now
        up.reused = True
        self.idle.append(up)

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for up in idle:
            up.close()

    def sweep(self, now: float) -> None:
        if self.idle and now - self.idle[0].last_used > POOL_IDLE_S:
            keep = [u for u in self.idle if not u.closed and now - u.last_used <= POOL_IDLE_S]
            for u in self.idle:
                if u not in keep:
                    u.close()
            self.idle = keep


class UpstreamConn(asyncio.Protocol):
    __slots__ = ("inst", "t", "ex", "parser", "events", "last_used", "closed", "reused", "tunnel", "sock")

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.t: asyncio.Transport | None = None
        self.ex: Exchange | None = None
        self.parser = ResponseParser()
        self.events = self.parser.events
        self.last_used = 0.0
        self.closed = False
        self.reused = False
        self.tunnel: ClientConn | None = None
        self.sock: socket.socket | None = None  # for TCP_QUICKACK

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = self.t = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=256 * 1024)
        if _QUICKACK:
            self.sock = transport.get_extra_info("socket")

    def _quickack(self) -> None:
        sock = self.sock
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self.sock = None

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            if self.sock is not None:
                self._quickack()
            if tunnel.t is not None:
                tunnel.t.write(data)
            return
        ex = self.ex
        if ex is None:
            self.close()  # bytes on an idle connection: it is out of step, never reuse it
            return
        self.parser.feed(data)
        ex.upstream_events(self.events)
        if self.ex is ex and self.sock is not None:
            self._quickack()  # more of this response is coming

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.close()
            return
        ex = self.ex
        if ex is not None:
            self.parser.eof()
            if self.events:
                ex.upstream_events(self.events)
            if self.ex is ex:
                ex.upstream_lost()

    def pause_writing(self) -> None:
        ex = self.ex
        peer = self.tunnel or (ex.conn if ex is not None else None)
        if peer is not None:
            peer.block_reading(True)
        if ex is not None:
            ex.upstream_stalled()

    def resume_writing(self) -> None:
        ex = self.ex
        peer = self.tunnel or (ex.conn if ex is not None else None)
        if peer is not None:
            peer.block_reading(False)
        if ex is not None:
            ex.upstream_moving()

    def close(self) -> None:
        self.closed = True
        if self.t is not None:
            self.t.close()
