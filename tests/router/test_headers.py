"""Sans-io rewriting (headers.py): the exact bytes the router writes, from parsed heads — no sockets."""

from __future__ import annotations

import pytest

from shipyard.primitives.spec.router import RouterEnvSpec
from shipyard.router.h1 import HEAD, Limits, RequestHead, RequestParser
from shipyard.router.h1response import ResponseHead, ResponseParser
from shipyard.router.headers import (
    HeaderPolicy,
    chunk,
    may_resend,
    request_head,
    response_head,
    simple_response,
)

PLAIN = HeaderPolicy()
PROD = HeaderPolicy.for_env("prod", RouterEnvSpec(), "rel")


def req(raw: bytes) -> RequestHead:
    p = RequestParser(Limits())
    p.feed(raw)
    ev = p.events[0]
    assert ev[0] == HEAD, p.events
    return ev[1]


def resp(raw: bytes, *, head_request: bool = False) -> ResponseHead:
    p = ResponseParser()
    p.no_body = head_request
    p.feed(raw)
    ev = p.events[0]
    assert ev[0] == HEAD, p.events
    return ev[1]


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n\r\n")
    return data[:-4].split(b"\r\n")


def test_request_head_keeps_forwardable_headers_and_adds_the_routers_own() -> None:
    head = req(b"GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Private\r\nX-Private: s\r\n"
               b"X-Forwarded-For: 10.0.0.1\r\nX-Request-Id: spoof\r\nAccept: */*\r\n\r\n")
    out = request_head(head, b"127.0.0.9", PROD, b"rid1", b"00-tp", "10.1.1.1", 9000, keep_xff=True)
    assert lines(out) == [
        b"GET /p?q=1 HTTP/1.1", b"Host: shop", b"Accept: */*", b"X-Forwarded-Host: shop",
        b"X-Forwarded-For: 10.0.0.1, 127.0.0.9", b"X-Forwarded-Proto: http", b"X-Request-Id: rid1",
        b"traceparent: 00-tp",
    ]
    # From a peer that is not a trusted proxy, the client's X-Forwarded-For is replaced by the peer.
    out = request_head(head, b"127.0.0.9", PROD, b"rid1", b"00-tp", "10.1.1.1", 9000)
    assert b"X-Forwarded-For: 127.0.0.9" in lines(out) and b"10.0.0.1" not in out


def test_request_head_for_http10_chunked_and_upgrade() -> None:
    out = request_head(req(b"GET / HTTP/1.0\r\n\r\n"), b"1.2.3.4", PLAIN, b"r", b"t", "10.1.1.1", 9000)
    assert b"GET / HTTP/1.1\r\nHost: 10.1.1.1:9000\r\n" in out and b"X-Forwarded-Host" not in out
    out = request_head(req(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), b"1.2.3.4",
                       PLAIN, b"r", b"t", "h", 1)
    assert out.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    out = request_head(req(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
                       b"1.2.3.4", PLAIN, b"r", b"t", "h", 1)
    assert out.endswith(b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n")


def test_response_head_security_headers_app_value_wins_and_cookie() -> None:
    rh = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Frame-Options: SAMEORIGIN\r\nKeep-Alive: 5\r\n\r\n")
    data, rechunk, close = response_head(rh, req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), PROD, b"rid", "r2",
                                         close=False)
    got = lines(data)
    assert got[0] == b"HTTP/1.1 200 OK" and not rechunk and not close
    assert b"X-Frame-Options: SAMEORIGIN" in got and b"X-Frame-Options: DENY" not in got
    assert b"X-Content-Type-Options: nosniff" in got and b"X-Request-Id: rid" in got
    assert b"Set-Cookie: rel=r2; Path=/; HttpOnly; SameSite=Lax" in got
    assert not any(line.lower().startswith(b"keep-alive") for line in got)


@pytest.mark.parametrize(
    ("request_raw", "response_raw", "rechunk", "close", "last"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         True, False, b"Transfer-Encoding: chunked"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
         True, False, b"Transfer-Encoding: chunked"),  # until-close body re-chunked, client kept
        (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         False, True, b"Connection: close"),  # 1.0 client: the body ends when we close
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         False, False, b"Connection: keep-alive"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
         False, False, b"HTTP/1.1 204 No Content"),
    ],
)
def test_response_framing(request_raw: bytes, response_raw: bytes, rechunk: bool, close: bool,
                          last: bytes) -> None:
    data, got_rechunk, got_close = response_head(resp(response_raw), req(request_raw), PLAIN, None, None,
                                                 close=False)
    assert (got_rechunk, got_close) == (rechunk, close)
    assert lines(data)[-1] == last


def test_response_head_close_and_switching_protocols() -> None:
    get = req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    data, _, close = response_head(resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), get, PLAIN, None,
                                   None, close=True)
    assert close and data.endswith(b"Connection: close\r\n\r\n")
    rh = resp(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    data, rechunk, close = response_head(rh, get, PLAIN, None, None, close=True)
    assert data.endswith(b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n") and not rechunk and not close


def test_policy_for_env_dev_and_tls() -> None:
    dev = HeaderPolicy.for_env("dev", RouterEnvSpec(), None)
    assert dev.security_block == b"" and not dev.security_names
    tls = HeaderPolicy.for_env("prod", RouterEnvSpec.model_validate({"tls": {"cert": "c", "key": "k"}}), None)
    assert tls.forwarded_proto == b"\r\nX-Forwarded-Proto: https\r\n"
    assert b"strict-transport-security" in tls.security_names


def test_local_answers_chunks_and_resend_rule() -> None:
    assert simple_response(503, b"no\n", close=True) == (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
        b"Connection: close\r\n\r\nno\n")
    assert simple_response(429, b"x", close=False, head_only=True, extra=b"Retry-After: 2\r\n").endswith(
        b"Connection: keep-alive\r\nRetry-After: 2\r\n\r\n")
    assert b"".join(chunk(b"hello world!")) == b"c\r\nhello world!\r\n"
    assert may_resend(req(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert not may_resend(req(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))
    assert not may_resend(req(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"))
