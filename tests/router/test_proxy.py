"""HTTP/1.1 proxying with real clients, a real router process and real upstream processes."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
from collections.abc import Callable

import pytest

from shipyard.primitives.pgcluster import free_port

from .helpers import RouterProc, Upstream, pool, read_response


@pytest.fixture
def env_port(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> int:
    a, b = upstreams("a1", "a2")
    port = free_port()
    router.set_table("staging", port, [pool("r1", [a, b])], {"r1": 100})
    return port


def test_keepalive_headers_and_tracing(env_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", env_port, timeout=10)
    seen = set()
    for _ in range(4):
        conn.request("GET", "/headers", headers={
            "X-Forwarded-For": "10.0.0.1", "Connection": "keep-alive, X-Private", "X-Private": "secret",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-Request-Id": "req-123",
        })
        r = conn.getresponse()
        seen.add(r.getheader("X-Instance"))
        got = {k.lower(): v for k, v in json.loads(r.read())["headers"]}
        assert r.status == 200
        assert r.getheader("X-Request-Id") == "req-123"
        assert r.getheader("X-Content-Type-Options") == "nosniff"  # staging gets security headers
    assert seen == {"a1", "a2"}  # round robin over one keep-alive client connection
    assert got["x-forwarded-for"] == "127.0.0.1"  # 127.0.0.1 is not a trusted proxy here
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == f"127.0.0.1:{env_port}"
    assert got["x-request-id"] == "req-123"
    tp = got["traceparent"].split("-")
    assert tp[1] == "4bf92f3577b34da6a3ce929d0e0e4736" and tp[2] != "00f067aa0ba902b7" and len(tp[2]) == 16
    assert "x-private" not in got and "connection" not in got and "keep-alive" not in got
    conn.request("GET", "/headers")
    fresh = {k.lower(): v for k, v in json.loads(conn.getresponse().read())["headers"]}
    assert len(fresh["traceparent"].split("-")[1]) == 32 and len(fresh["x-request-id"]) == 32


def test_chunked_both_ways_and_large_streams(env_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", env_port, timeout=30)
    parts = [os.urandom(1000 + i) for i in range(20)]
    conn.request("POST", "/echo?chunked=1", body=iter(parts), encode_chunked=True)
    r = conn.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == b"".join(parts)
    payload = os.urandom(3 * 1024 * 1024)
    conn.request("POST", "/sink", body=payload)
    assert json.loads(conn.getresponse().read()) == {"size": len(payload),
                                                     "sha256": hashlib.sha256(payload).hexdigest()}
    conn.request("GET", "/download?bytes=5000000&chunked=1")
    r = conn.getresponse()
    assert len(r.read()) == 5_000_000
    conn.request("GET", "/download?bytes=4000000")
    r = conn.getresponse()
    assert r.getheader("Content-Length") == "4000000" and len(r.read()) == 4_000_000


def test_head_http10_and_until_close(env_port: int) -> None:
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(s, head_only=True)
        assert status == 200 and headers["content-length"] == "2"
        status, _, body = read_response(s)
        assert status == 200 and body in (b"a1", b"a2")
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"GET /download?bytes=1000&chunked=1 HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        assert b"Transfer-Encoding" not in head and b"Connection: close" in head and len(body) == 1000
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, _ = read_response(s)
        assert headers["connection"] == "keep-alive"
        s.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(s)
        assert body == b"until-close-body" and headers["transfer-encoding"] == "chunked"


def test_pipelined_requests_answered_in_order(env_port: int) -> None:
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        reqs = b"".join(
            b"GET /slow?ms=%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: n%d\r\n\r\n" % ((5 - i) * 20, i) for i in range(6)
        ) + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlast"
        s.sendall(reqs)
        ids = []
        for _ in range(6):
            _, headers, _ = read_response(s)
            ids.append(headers["x-request-id"])
        assert ids == [f"n{i}" for i in range(6)]
        assert read_response(s)[2] == b"last"


def test_expect_100_continue(env_port: int) -> None:
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"PUT /sink HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        status, _, _ = read_response(s)
        assert status == 100
        s.sendall(b"hello")
        status, _, body = read_response(s)
        assert status == 200 and json.loads(body)["size"] == 5
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"PUT /sink HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999999\r\n\r\n")
        assert read_response(s)[0] == 413


def test_websocket_echo_through_the_tunnel(env_port: int) -> None:
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection(("127.0.0.1", env_port), timeout=10) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
        status, headers, rest = read_response(s, head_only=True)
        assert status == 101 and headers["upgrade"].lower() == "websocket"
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        assert headers["sec-websocket-accept"] == accept
        for msg in (b"hello", b"x" * 300, b"z" * 70000):
            mask = os.urandom(4)
            n = len(msg)
            size = bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536
                                                     else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
            s.sendall(bytes([0x81]) + size + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(msg)))
            want = len(msg) + (2 if n < 126 else 4 if n < 65536 else 10)
            while len(rest) < want:
                rest += s.recv(65536)
            assert rest[-len(msg):] == msg
            rest = b""
