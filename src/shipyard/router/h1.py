"""Sans-io HTTP/1.1 framing on llhttp (httptools): the request parser that turns a client's bytes into
events, with the proxy's own strictness on top (the upstream side is h1response.py).

No sockets here: ``RequestParser.feed(bytes)`` appends ``(kind, payload)`` events to ``.events``; the
driver (proxy.py, exchange.py) consumes them; what the router writes back is built in headers.py.

llhttp already rejects Content-Length with Transfer-Encoding, duplicate Content-Length, bad chunk sizes,
obs-fold, bare CR/LF, whitespace before the colon and control bytes in the request line; this module
adds: Transfer-Encoding other than exactly ``chunked``, Transfer-Encoding on HTTP/1.0, repeated Host,
missing Host on HTTP/1.1, versions other than 1.0/1.1, CONNECT, and the size limits (431 / 413).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

import httptools

# Event kinds; an event is ``(kind, payload)``, typed below so a check of ``event[0]`` narrows the payload.
HEAD: Final = 0
BODY: Final = 1  # bytes
END: Final = 2  # None
ERROR: Final = 3  # (status, reason)
UPGRADE: Final = 4  # the bytes after the head, not HTTP any more

# Never forwarded, whichever side sent them (RFC 9110 §7.6.1, plus the de-facto ones).
HOP_BY_HOP: Final = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
        b"upgrade", b"proxy-authenticate", b"proxy-authorization",
    }
)
# Request headers the router replaces with its own values.
_REPLACED: Final = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
                       b"traceparent", b"expect"})
STANDARD_CONN_TOKENS: Final = frozenset({b"keep-alive", b"close", b"upgrade"})
# Request fields with a rule of their own; any other is only counted and copied.
_SPECIAL: Final = HOP_BY_HOP | _REPLACED | {b"host", b"cookie", b"content-length"}


@dataclass(frozen=True, slots=True)
class Limits:
    max_request_line: int = 8192
    max_header_size: int = 32768
    max_headers: int = 100
    max_body_size: int = 100 * 1024 * 1024  # 0: unlimited


def first_value(lines: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((line.split(b":", 1)[1].strip() for ln, line in lines if ln == name), None)


class Reject(Exception):
    """Raised inside parser callbacks to stop parsing with a status for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestHead:
    __slots__ = (
        "method", "target", "version", "lines", "keep_alive", "chunked", "content_length", "upgrade",
        "expect_continue", "host", "cookie", "xff", "request_id", "traceparent", "conn_tokens",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = "1.1"
        # Forwardable headers as (lowercased name, b"Name: value\r\n").
        self.lines: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self.chunked = False
        self.content_length = -1
        self.upgrade: bytes | None = None
        self.expect_continue = False
        self.host: bytes | None = None
        self.cookie: bytes | None = None
        self.xff: bytes | None = None
        self.request_id: bytes | None = None
        self.traceparent: bytes | None = None
        self.conn_tokens: set[bytes] | None = None

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    def header(self, name: bytes) -> bytes | None:
        """First forwarded value of ``name`` (lowercase); for tests and rare lookups."""
        return first_value(self.lines, name)


RequestEvent = (
    tuple[Literal[0], RequestHead] | tuple[Literal[1], bytes] | tuple[Literal[2], None]
    | tuple[Literal[3], tuple[int, str]] | tuple[Literal[4], bytes]
)


class RequestParser:
    """Bytes from a client → events. After an ERROR or UPGRADE event the parser accepts no more input."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.events: deque[RequestEvent] = deque()
        self.done = False  # errored or upgraded: the rest of the stream is not HTTP to us
        self._p = httptools.HttpRequestParser(self)
        self._head: RequestHead | None = None
        self._url = b""
        self._in_head = False
        self._line = 0  # bytes of the head's unfinished line: what llhttp is accumulating for us
        self._fresh = False  # the head in progress began in the current read
        self._body_here = 0  # body bytes of the current message in the current read
        self._prev_body = 0  # ... of the message before it, which precede the new head in this read
        self._hsize = 0
        self._hcount = 0
        self._te = False
        self._body_seen = 0

    # -- driver API ------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self._fresh = False
        self._body_here = 0
        try:
            self._p.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.done = True
            self.events.append((UPGRADE, data[exc.args[0]:]))
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Reject):
                self._fail(cause.status, cause.reason)
            elif cause is not None:
                raise cause from exc
            else:
                self._fail(400, "malformed request")
            return
        except httptools.HttpParserError as exc:
            self._fail(400, str(exc) or "malformed request")
            return
        if self._in_head:
            # Head still incomplete. Finished lines are bounded by the callbacks' own counts; what is left
            # unbounded is the line in progress, so count the head's bytes after the last newline (not the
            # whole read: it may also hold many pipelined requests, or the previous request's body).
            nl = data.rfind(b"\n") + 1
            if nl or self._fresh:
                self._line = max(0, len(data) - nl - (self._prev_body if self._fresh else 0))
            else:
                self._line += len(data)
            if self._line > self.limits.max_header_size + self.limits.max_request_line:
                self._fail(431, "request header fields too large")

    @property
    def in_message(self) -> bool:
        return self._head is not None

    def _fail(self, status: int, reason: str) -> None:
        self.done = True
        self.events.append((ERROR, (status, reason)))

    # -- llhttp callbacks ------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._head = RequestHead()
        self._url = b""
        self._in_head = True
        self._fresh = True
        self._prev_body, self._body_here = self._body_here, 0
        self._hsize = 0
        self._hcount = 0
        self._te = False
        self._body_seen = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_request_line:
            raise Reject(431, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        if head is None or not self._in_head:
            return  # trailers of a chunked body are dropped
        self._hcount += 1
        self._hsize += len(name) + len(value) + 4
        if self._hsize > self.limits.max_header_size or self._hcount > self.limits.max_headers:
            raise Reject(431, "request header fields too large")
        ln = name.lower()
        if ln not in _SPECIAL:
            head.lines.append((ln, b"".join((name, b": ", value, b"\r\n"))))
            return
        if ln in HOP_BY_HOP:
            if ln == b"transfer-encoding":
                if self._te or value.strip().lower() != b"chunked":
                    raise Reject(400, "unsupported Transfer-Encoding")
                self._te = True
            elif ln == b"connection":
                if head.conn_tokens is None and value.lower() in STANDARD_CONN_TOKENS:
                    return  # one standard token, the common case: nothing more is hop-by-hop
                toks = {t.strip().lower() for t in value.split(b",")}
                head.conn_tokens = toks if head.conn_tokens is None else head.conn_tokens | toks
            elif ln == b"upgrade":
                head.upgrade = value
            return
        if ln in _REPLACED:
            if ln == b"x-forwarded-for":
                head.xff = value if head.xff is None else head.xff + b", " + value
            elif ln == b"x-request-id":
                head.request_id = value
            elif ln == b"traceparent":
                head.traceparent = value
            elif ln == b"expect":
                if value.strip().lower() != b"100-continue":
                    raise Reject(417, "unsupported Expect")
                head.expect_continue = True
            return
        if ln == b"host":
            if head.host is not None:
                raise Reject(400, "more than one Host header")
            head.host = value
        elif ln == b"cookie":
            head.cookie = value if head.cookie is None else head.cookie + b"; " + value
        elif ln == b"content-length":
            head.content_length = int(value)  # llhttp has checked it is digits only
        head.lines.append((ln, b"".join((name, b": ", value, b"\r\n"))))

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        self._in_head = False
        p = self._p
        version = p.get_http_version()
        if version != "1.1" and version != "1.0":
            raise Reject(505, "HTTP version not supported")
        method = p.get_method()
        if method == b"CONNECT":
            raise Reject(405, "CONNECT is not supported")
        if head.host is None and version == "1.1":
            raise Reject(400, "missing Host header")
        if self._te:
            if version == "1.0":
                raise Reject(400, "Transfer-Encoding on HTTP/1.0")
            head.chunked = True
        limit = self.limits.max_body_size
        if limit and head.content_length > limit:
            raise Reject(413, "request body too large")
        head.method = method
        head.target = self._url
        head.version = version
        head.keep_alive = p.should_keep_alive()
        if not p.should_upgrade():
            head.upgrade = None
        toks = head.conn_tokens
        if toks and not toks <= STANDARD_CONN_TOKENS:
            # Headers named in Connection are hop-by-hop too.
            head.lines = [hl for hl in head.lines if hl[0] not in toks]
        self.events.append((HEAD, head))

    def on_body(self, body: bytes) -> None:
        self._body_here += len(body)
        limit = self.limits.max_body_size
        if limit:
            self._body_seen += len(body)
            if self._body_seen > limit:
                raise Reject(413, "request body too large")
        self.events.append((BODY, body))

    def on_message_complete(self) -> None:
        self._head = None
        self.events.append((END, None))
