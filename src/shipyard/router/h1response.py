"""Sans-io parsing of upstream responses on llhttp (httptools): bytes from an instance → events.

Same event kinds as h1.py, plus ``INTERIM`` (a 1xx head other than 101, rendered for the client). ``END``
carries the response's trailer lines (or None). Responses are trusted more than requests (the instances
are ours), so this only frames them: hop-by-hop headers are removed, and a body without length is read
until close.
"""

from __future__ import annotations

from typing import Final, Literal

import httptools

from shipyard.router.h1 import BODY, END, ERROR, HEAD, HOP_BY_HOP, STANDARD_CONN_TOKENS, UPGRADE, first_value

INTERIM: Final = 5  # bytes: a 1xx head (100 Continue, 103 Early Hints...) as the client gets it

ResponseEvent = (
    tuple[Literal[0], "ResponseHead"] | tuple[Literal[1], bytes] | tuple[Literal[2], bytes | None]
    | tuple[Literal[3], tuple[int, str]] | tuple[Literal[4], bytes] | tuple[Literal[5], bytes]
)
# Framing and routing fields never taken from a trailer (RFC 9110 §6.5.1); hop-by-hop ones neither.
_NOT_TRAILERS: Final = frozenset({b"content-length", b"host", b"content-type", b"content-encoding", b"content-range",
                           b"cache-control", b"expect", b"set-cookie", b"authorization", b"www-authenticate"})
# Head fields that need more than copying: framing, hop-by-hop, the Trailer announcement.
_SPECIAL: Final = HOP_BY_HOP | {b"trailer", b"content-length"}


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
        return first_value(self.lines, name)


class _HeadDone(Exception):
    pass


class ResponseParser:
    """Bytes from an upstream → events. Set ``no_body`` before feeding the answer to a HEAD request.

    1xx interim responses (other than 101) become ``INTERIM`` events; trailers after a chunked body ride
    on the ``END`` event. ``dirty`` means the connection carried bytes past the response and must not be reused.
    """

    def __init__(self) -> None:
        self.events: list[ResponseEvent] = []  # a list, not a deque: consumed whole by each read's handler
        self.no_body = False
        self.dirty = False
        self.done = False
        self._p = httptools.HttpResponseParser(self)
        self._head: ResponseHead | None = None
        self._in_head = False
        self._lines: list[tuple[bytes, bytes]] | None = None
        self._conn_tokens: set[bytes] | None = None
        self._complete = False
        self._trailers: list[bytes] | None = None

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
        head = self._head = ResponseHead()
        self._lines = head.lines
        self._in_head = True
        self._conn_tokens = None
        self._trailers = None

    def on_status(self, reason: bytes) -> None:
        if self._head is not None:
            self._head.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        ln = name.lower()
        lines = self._lines  # the head's, while it is parsed
        if lines is not None and ln not in _SPECIAL:  # the common case, kept short: once per header
            lines.append((ln, b"".join((name, b": ", value, b"\r\n"))))
            return
        head = self._head
        if head is None:
            return
        if not self._in_head:  # a trailer field after the last chunk
            if ln not in HOP_BY_HOP and ln not in _NOT_TRAILERS:
                if self._trailers is None:
                    self._trailers = []
                self._trailers.append(b"".join((name, b": ", value, b"\r\n")))
            return
        if ln == b"trailer":  # announces the trailers, which are forwarded
            head.lines.append((ln, b"".join((name, b": ", value, b"\r\n"))))
            return
        if ln in HOP_BY_HOP:
            if ln == b"transfer-encoding":
                head.chunked = value.strip().lower().endswith(b"chunked")
            elif ln == b"connection":
                if value.lower() not in STANDARD_CONN_TOKENS:  # "keep-alive" alone is the common case: no set
                    self._conn_tokens = {t.strip().lower() for t in value.split(b",")}
            elif ln == b"upgrade":
                head.upgrade = value
            return
        if ln == b"content-length":
            head.content_length = int(value)
        head.lines.append((ln, b"".join((name, b": ", value, b"\r\n"))))

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        self._in_head = False
        self._lines = None
        p = self._p
        status = p.get_status_code()
        head.status = status
        head.keep_alive = p.should_keep_alive()
        toks = self._conn_tokens
        if toks and not toks <= STANDARD_CONN_TOKENS:
            head.lines = [hl for hl in head.lines if hl[0] not in toks]
        if 100 <= status < 200 and status != 101:
            reason = head.reason or b"Continue"
            self.events.append((INTERIM, b"".join([b"HTTP/1.1 %d %s\r\n" % (status, reason),
                                                   *(line for _, line in head.lines), b"\r\n"])))
            return  # no END for it: on_message_complete skips 1xx
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
            trailers, self._trailers = self._trailers, None
            self.events.append((END, b"".join(trailers) if trailers else None))
