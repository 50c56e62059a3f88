"""What an environment listens with, besides its proxy: the listening socket, the TLS certificate that
is reloaded when its files change, and the plain-HTTP listener that only redirects to https."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import sys
from typing import TYPE_CHECKING, cast

from shipyard.primitives.routerproto import TableError
from shipyard.router.h1 import ERROR, HEAD, RequestHead, RequestParser
from shipyard.router.headers import simple_response

if TYPE_CHECKING:
    from shipyard.router.env import EnvRuntime

# Connects a burst can queue before accept() (the kernel caps it at net.core.somaxconn). The event loop
# listen()s again when it starts serving, so it must be given the same value, not its default of 100.
LISTEN_BACKLOG = 4096


# Sockets handed over by the router this one replaces (primitives/listenerpass.py) or passed
# by the control plane when it restarts a dead router (--listener),, taken instead of binding anew.
INHERITED: dict[tuple[str, int], socket.socket] = {}


def listen_socket(host: str, port: int) -> socket.socket:
    inherited = INHERITED.pop((host, port), None)
    if inherited is not None:
        return inherited
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # SO_REUSEPORT lets a restarted router bind while the old one still serves (handover, docs/router.md).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _load(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsFiles:
    """A listener's TLS context and the certificate/key files it came from.

    ``check()`` (from the once-a-second sweep: two stat calls, never per request) notices a renewal at the
    same paths by inode, mtime or size and loads the new pair into the same context, so the listener
    stays up and new handshakes get the new certificate while open connections keep theirs. The pair is
    first loaded into a scratch context: a half-written renewal (new certificate, old key) is refused
    there and retried on the next check, and the live context never sees it."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert = cert
        self.key = key
        try:
            self._sig = self._stat()
            self.ctx = _load(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TableError(f"tls: cannot load certificate {cert} / key {key}: {exc}") from exc
        self._refused: tuple[int, ...] | None = None

    def _stat(self) -> tuple[int, ...]:
        a, b = os.stat(self.cert), os.stat(self.key)
        return a.st_ino, a.st_mtime_ns, a.st_size, b.st_ino, b.st_mtime_ns, b.st_size

    def check(self) -> bool:
        """Reload when the files changed; True when the new certificate is now served."""
        try:
            sig = self._stat()
        except OSError:
            return False  # mid-rename: the next check sees the new files
        if sig == self._sig:
            return False
        try:
            _load(self.cert, self.key)
            self.ctx.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            if sig != self._refused:
                self._refused = sig
                print(f"router: tls: not reloading {self.cert} / {self.key}: {exc} (old certificate kept)",
                      file=sys.stderr)
            return False
        self._sig = sig
        return True


_HOST = re.compile(rb"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$")


def redirect_location(head: RequestHead, https_port: int) -> bytes | None:
    """``https://<host><:port unless 443><path>`` for a plain-HTTP request, or None without a usable Host."""
    host = head.host
    if not host:
        return None
    if host.startswith(b"["):
        host = host[: host.find(b"]") + 1]
    else:
        host = host.rsplit(b":", 1)[0]
    if not _HOST.match(host):
        return None
    target = head.target if head.target.startswith(b"/") else b"/"
    port = b"" if https_port == 443 else b":%d" % https_port
    return b"https://" + host + port + target


class RedirectConn(asyncio.Protocol):
    """A connection to the plain-HTTP listener of an environment with ``redirect_http``: the first request
    gets ``308 Permanent Redirect`` to https (the method and body are kept by 308 clients), then the
    connection closes. The request is framed by the same strict parser as the proxy's."""

    def __init__(self, env: EnvRuntime) -> None:
        self.env = env
        self.parser = RequestParser(env.limits)
        self.t: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)
        self._timer = self.env.loop.call_later(self.env.settings.header_timeout, self.t.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.t = None

    def data_received(self, data: bytes) -> None:
        t = self.t
        if t is None or self.parser.done:
            return
        self.parser.feed(data)
        for ev in self.parser.events:
            if ev[0] == HEAD:
                location = redirect_location(ev[1], self.env.port)
                if location is None:
                    t.write(simple_response(400, b"missing or invalid Host\n", close=True))
                else:
                    t.write(simple_response(308, b"", close=True, extra=b"Location: " + location + b"\r\n",
                                            head_only=ev[1].method == b"HEAD"))
                break
            if ev[0] == ERROR:
                status, reason = ev[1]
                t.write(simple_response(status, (reason + "\n").encode(), close=True))
                break
        else:
            return
        self.parser.done = True
        t.close()
