"""Sans-io rewriting: the bytes the router writes, built from parsed heads (h1.py) and per-environment policy.

Nothing here touches a socket or the clock, so every rule is a plain function tested on bytes
(tests/router/test_headers.py): the request head sent upstream, the response head sent back, the router's
own answers, chunk framing, and the two decisions about an upstream connection (retry, reuse).
``HeaderPolicy`` is rendered once per table so the hot path only joins prepared byte strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Final

from shipyard.primitives.spec.router import RouterEnvSpec
from shipyard.router.h1 import RequestHead
from shipyard.router.h1response import ResponseHead

# A request these methods carry can be sent again when a pooled connection dies before any answer.
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE_100: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

_LINE: Final = itemgetter(1)  # (name, line) → line: map() with it runs in C, no comprehension frame per head
_NAME: Final = itemgetter(0)
# status → (the upstream's reason phrase, the status line built from both): bytes % per response is
# CPython's slow formatting path, a dict hit and a short compare are not.
_STATUS_LINES: Final[dict[int, tuple[bytes, bytes]]] = {}
_REASONS: Final = {
    308: b"Permanent Redirect", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 413: b"Content Too Large", 417: b"Expectation Failed",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}


@dataclass(frozen=True, slots=True)
class HeaderPolicy:
    """What one environment adds to every exchange."""

    # Follows the X-Forwarded-For value, so it closes that line and is a whole line itself.
    forwarded_proto: bytes = b"\r\nX-Forwarded-Proto: http\r\n"
    security_names: frozenset[bytes] = frozenset()
    security_lines: tuple[tuple[bytes, bytes], ...] = ()  # (lowercase name, b"Name: value\r\n")
    security_block: bytes = b""
    sticky_cookie: str | None = None

    @classmethod
    def for_env(cls, env_name: str, settings: RouterEnvSpec, sticky_cookie: str | None) -> HeaderPolicy:
        headers = settings.resolved_security_headers(env_name)
        lines = tuple((k.lower().encode(), f"{k}: {v}\r\n".encode()) for k, v in headers.items())
        return cls(
            forwarded_proto=b"\r\nX-Forwarded-Proto: %s\r\n" % (b"https" if settings.tls is not None else b"http"),
            security_names=frozenset(name for name, _ in lines),
            security_lines=lines,
            security_block=b"".join(line for _, line in lines),
            sticky_cookie=sticky_cookie,
        )

    def set_cookie_line(self, release: str) -> bytes:
        return f"Set-Cookie: {self.sticky_cookie}={release}; Path=/; HttpOnly; SameSite=Lax\r\n".encode()


def request_head(head: RequestHead, client_ip: bytes, policy: HeaderPolicy, request_id: bytes,
                 traceparent: bytes, host: str, port: int, keep_xff: bool = False) -> bytes:
    """The head sent upstream: forwardable headers as received, then the router's own (always HTTP/1.1).
    ``host``/``port`` (the instance) stand in for a missing Host header (HTTP/1.0 clients).
    X-Forwarded-For is the peer's address, appended to the client's own only when ``keep_xff`` (the peer
    is a trusted proxy): anyone else could write any address there."""
    parts = [head.method, b" ", head.target, b" HTTP/1.1\r\n"]
    parts += map(_LINE, head.lines)
    xff = head.xff + b", " + client_ip if keep_xff and head.xff is not None else client_ip
    if head.host is None:
        parts.append(b"Host: %s:%d\r\n" % (host.encode(), port))
    else:
        parts += (b"X-Forwarded-Host: ", head.host, b"\r\n")
    parts += (b"X-Forwarded-For: ", xff, policy.forwarded_proto, b"X-Request-Id: ", request_id,
              b"\r\ntraceparent: ", traceparent, b"\r\n")
    if head.chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if head.upgrade is not None:
        parts += (b"Connection: upgrade\r\nUpgrade: ", head.upgrade, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(rh: ResponseHead, head: RequestHead, policy: HeaderPolicy, request_id: bytes | None,
                  cookie_release: str | None, close: bool) -> tuple[bytes, bool, bool]:
    """The head sent to the client for an upstream response → ``(bytes, rechunk, close)``.

    ``close`` says the client connection ends after this response whatever the upstream said; the result
    may add to it (an HTTP/1.0 client whose body is delimited by the close). ``rechunk``: the body goes to
    the client chunked (the upstream's own chunking or close-delimited body is re-framed).
    """
    status = rh.status
    reason = rh.reason
    hit = _STATUS_LINES.get(status)
    if hit is not None and hit[0] == reason:
        line = hit[1]
    else:  # at most one entry per status code (100..999, llhttp checks): the last reason seen is kept
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        _STATUS_LINES[status] = (reason, line)
    parts = [line]
    parts += map(_LINE, rh.lines)
    names = policy.security_names
    if names:
        if names.isdisjoint(map(_NAME, rh.lines)):
            parts.append(policy.security_block)
        else:  # the app's own value wins
            present = {ln for ln, _ in rh.lines if ln in names}
            parts += [line for ln, line in policy.security_lines if ln not in present]
    if request_id is not None:
        parts += (b"X-Request-Id: ", request_id, b"\r\n")
    if cookie_release is not None:
        parts.append(policy.set_cookie_line(cookie_release))
    if status == 101:
        parts += (b"Connection: upgrade\r\nUpgrade: ", rh.upgrade or b"websocket", b"\r\n\r\n")
        return b"".join(parts), False, False
    rechunk = False
    no_body = head.method == b"HEAD" or status == 204 or status == 304 or status < 200
    if not no_body and (rh.chunked or rh.until_close):
        if head.version == "1.1":
            rechunk = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            close = True  # HTTP/1.0 client: the body ends when we close
    if close:
        parts.append(b"Connection: close\r\n\r\n")
    elif head.version == "1.0":
        parts.append(b"Connection: keep-alive\r\n\r\n")
    else:
        parts.append(b"\r\n")
    return b"".join(parts), rechunk, close


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


def may_resend(head: RequestHead) -> bool:
    """A pooled connection closed before any response byte: nothing was processed, so a bodiless
    idempotent request can go again (once)."""
    return not head.has_body and head.method in IDEMPOTENT
