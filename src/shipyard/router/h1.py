"""Sans-io HTTP/1.1 framing on llhttp (httptools): request and response parsers that turn bytes into
events, with the proxy's own strictness on top, and the serialisers for what the router writes.

No sockets here: ``RequestParser.feed(bytes)`` appends ``(kind, payload)`` events to ``.events``; the
driver (proxy.py) consumes them. llhttp already rejects Content-Length with Transfer-Encoding, duplicate
Content-Length, bad chunk sizes, obs-fold, bare CR/LF, whitespace before the colon and control bytes in
the request line; this module adds: Transfer-Encoding other than exactly ``chunked``, Transfer-Encoding
on HTTP/1.0, repeated Host, missing Host on HTTP/1.1, versions other than 1.0/1.1, CONNECT, and the
size limits (431 / 413).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import httptools

# Event kinds.
HEAD, BODY, END, ERROR, UPGRADE = 0, 1, 2, 3, 4

# Never forwarded, whichever side sent them (RFC 9110 §7.6.1, plus the de-facto ones).
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
        b"upgrade", b"proxy-authenticate", b"proxy-authorization",
    }
)
# Request headers the router replaces with its own values.
_REPLACED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
                       b"traceparent", b"expect"})
_STANDARD_CONN_TOKENS = frozenset({b"keep-alive", b"close", b"upgrade"})


class Limits:
    __slots__ = ("max_request_line", "max_header_size", "max_headers", "max_body_size")

    def __init__(self, max_request_line: int = 8192, max_header_size: int = 32768, max_headers: int = 100,
                 max_body_size: int = 100 * 1024 * 1024) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_body_size = max_body_size


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
        for ln, line in self.lines:
            if ln == name:
                return line.split(b":", 1)[1].strip()
        return None


class RequestParser:
    """Bytes from a client → events. After an ERROR or UPGRADE event the parser accepts no more input."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.events: deque[tuple[int, Any]] = deque()
        self.done = False  # errored or upgraded: the rest of the stream is not HTTP to us
        self._p = httptools.HttpRequestParser(self)
        self._head: RequestHead | None = None
        self._url = b""
        self._in_head = False
        self._raw = 0
        self._hsize = 0
        self._hcount = 0
        self._te = False
        self._body_seen = 0

    # -- driver API ------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.done:
            return
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
            # Head still incomplete: everything fed since it began is head bytes (bounds buffering).
            self._raw += len(data)
            if self._raw > self.limits.max_header_size + self.limits.max_request_line:
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
        self._raw = 0
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
        if ln in HOP_BY_HOP:
            if ln == b"transfer-encoding":
                if self._te or value.strip().lower() != b"chunked":
                    raise Reject(400, "unsupported Transfer-Encoding")
                self._te = True
            elif ln == b"connection":
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
        head.lines.append((ln, name + b": " + value + b"\r\n"))

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
        if toks and not toks <= _STANDARD_CONN_TOKENS:
            # Headers named in Connection are hop-by-hop too.
            head.lines = [hl for hl in head.lines if hl[0] not in toks]
        self.events.append((HEAD, head))

    def on_body(self, body: bytes) -> None:
        limit = self.limits.max_body_size
        if limit:
            self._body_seen += len(body)
            if self._body_seen > limit:
                raise Reject(413, "request body too large")
        self.events.append((BODY, body))

    def on_message_complete(self) -> None:
        self._head = None
        self.events.append((END, None))


class ResponseHead:
    __slots__ = ("status", "reason", "lines", "keep_alive", "chunked", "content_length", "until_close", "upgrade")

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.lines: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self.chunked = False
        self.content_length = -1
        self.until_close = False  # body delimited by the connection closing
        self.upgrade: bytes | None = None

    def header(self, name: bytes) -> bytes | None:
        for ln, line in self.lines:
            if ln == name:
                return line.split(b":", 1)[1].strip()
        return None


class _HeadDone(Exception):
    pass


class ResponseParser:
    """Bytes from an upstream → events. Set ``no_body`` before feeding the answer to a HEAD request.

    1xx interim responses (other than 101) are swallowed: the router answers ``Expect`` itself.
    ``dirty`` means the connection carried bytes past the response and must not be reused.
    """

    def __init__(self) -> None:
        self.events: deque[tuple[int, Any]] = deque()
        self.no_body = False
        self.dirty = False
        self.done = False
        self._p = httptools.HttpResponseParser(self)
        self._head: ResponseHead | None = None
        self._in_head = False
        self._conn_tokens: set[bytes] | None = None
        self._complete = False

    def reset(self) -> None:
        """Ready for the next response on the same connection."""
        self.no_body = False
        self._complete = False

    @property
    def started(self) -> bool:
        return self._head is not None

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        try:
            try:
                self._p.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                if exc.__context__ is not None:
                    raise exc.__context__ from None
                raise
        except _HeadDone:
            # The answer to HEAD ends with its head; llhttp would wait for Content-Length bytes, so start a
            # fresh parser. Anything after the head in this read makes the connection unusable.
            end = data.find(b"\r\n\r\n")
            if end == -1 or end + 4 != len(data):
                self.dirty = True
            self._p = httptools.HttpResponseParser(self)
        except httptools.HttpParserUpgrade as exc:
            self.done = True
            self.events.append((UPGRADE, data[exc.args[0]:]))
        except httptools.HttpParserError as exc:
            self.done = True
            self.events.append((ERROR, (502, str(exc) or "malformed response")))

    def eof(self) -> None:
        """The upstream closed: ends a read-until-close body, else the response (if any) is truncated."""
        head = self._head
        if head is not None and head.until_close and not self.done:
            self._head = None
            self.done = True
            self.events.append((END, None))
        elif head is not None:
            self.done = True
            self.events.append((ERROR, (502, "upstream closed mid-response")))

    def on_message_begin(self) -> None:
        self._head = ResponseHead()
        self._in_head = True
        self._conn_tokens = None

    def on_status(self, reason: bytes) -> None:
        if self._head is not None:
            self._head.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        if head is None or not self._in_head:
            return
        ln = name.lower()
        if ln in HOP_BY_HOP:
            if ln == b"transfer-encoding":
                head.chunked = value.strip().lower().endswith(b"chunked")
            elif ln == b"connection":
                self._conn_tokens = {t.strip().lower() for t in value.split(b",")}
            elif ln == b"upgrade":
                head.upgrade = value
            return
        if ln == b"content-length":
            head.content_length = int(value)
        head.lines.append((ln, name + b": " + value + b"\r\n"))

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        self._in_head = False
        p = self._p
        status = p.get_status_code()
        head.status = status
        head.keep_alive = p.should_keep_alive()
        toks = self._conn_tokens
        if toks and not toks <= _STANDARD_CONN_TOKENS:
            head.lines = [hl for hl in head.lines if hl[0] not in toks]
        if 100 <= status < 200 and status != 101:
            return  # interim: swallowed in on_message_complete
        no_body = self.no_body or status == 204 or status == 304
        if not no_body and not head.chunked and head.content_length < 0 and status != 101:
            head.until_close = True
            head.keep_alive = False
        self.events.append((HEAD, head))
        if self.no_body and status >= 200:
            self._head = None
            self.events.append((END, None))
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        self.events.append((BODY, body))

    def on_message_complete(self) -> None:
        head = self._head
        self._head = None
        if head is not None and (head.status >= 200 or head.status == 101):
            if self._complete:
                self.dirty = True  # a second response we did not ask for
            self._complete = True
            self.events.append((END, None))


# -- serialisers ---------------------------------------------------------------------------------------

_REASONS = {
    400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 413: b"Content Too Large", 417: b"Expectation Failed",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}


def reason_phrase(status: int) -> bytes:
    return _REASONS.get(status, b"Error")


def simple_response(
    status: int,
    body: bytes,
    *,
    close: bool,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: bytes = b"",
    head_only: bool = False,
) -> bytes:
    """A complete response generated by the router itself (errors, maintenance page)."""
    conn = b"close" if close else b"keep-alive"
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n%s\r\n" % (
        status, reason_phrase(status), content_type, len(body), conn, extra,
    )
    return head if head_only else head + body


def chunk(data: bytes) -> list[bytes]:
    return [b"%x\r\n" % len(data), data, b"\r\n"]


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
