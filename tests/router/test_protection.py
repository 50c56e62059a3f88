"""Protection over real sockets: limits, timeouts, smuggling, rate limits, security headers, 502/504,
plus TLS, the access log and the Prometheus admin port."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shipyard.primitives.pgcluster import free_port

from .helpers import RouterProc, Upstream, pool, raw_exchange, read_response
from .test_h1 import SMUGGLING

FAST = {"header_timeout": "1s", "idle_timeout": "1s", "body_timeout": "1s", "response_timeout": "1s",
        "max_body_size": 1000, "max_header_size": 2048}


@pytest.fixture
def fast_env(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> int:
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100}, settings=FAST)
    return port


def first_status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    return int(data.split(b" ", 2)[1])


def test_smuggling_suite_answered_400_and_closed(fast_env: int) -> None:
    for name, raw in SMUGGLING.items():
        data = raw_exchange(fast_env, raw + b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        assert first_status(data) == 400, name
        assert data.count(b"HTTP/1.1 ") == 1, f"{name}: a second (smuggled) request was answered"
        assert b"Connection: close" in data


def test_size_limits(fast_env: int) -> None:
    assert first_status(raw_exchange(fast_env, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 5000 + b"\r\n\r\n")) == 431
    assert first_status(raw_exchange(fast_env, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")) == 431
    assert first_status(raw_exchange(fast_env, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")) == 413
    data = raw_exchange(fast_env, b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"1f4\r\n" + b"x" * 500 + b"\r\n" * 1 + b"3e8\r\n" + b"y" * 1000 + b"\r\n0\r\n\r\n")
    assert first_status(data) == 413


def test_slowloris_and_idle_timeouts(fast_env: int) -> None:
    with socket.create_connection(("127.0.0.1", fast_env), timeout=15) as s:
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        got = b""
        try:
            for _ in range(20):
                s.sendall(b"X: y\r\n")
                time.sleep(0.25)
        except OSError:
            pass
        try:
            while chunk := s.recv(65536):
                got += chunk
        except OSError:
            pass
        assert first_status(got) == 408 and time.monotonic() - t0 < 10
    with socket.create_connection(("127.0.0.1", fast_env), timeout=15) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s)[0] == 200
        t0 = time.monotonic()
        assert s.recv(10) == b""  # idle keep-alive connection closed by the router
        assert time.monotonic() - t0 < 10


def test_upstream_timeout_504_and_bad_gateway_502(fast_env: int, router: RouterProc) -> None:
    with socket.create_connection(("127.0.0.1", fast_env), timeout=15) as s:
        s.sendall(b"GET /slow?ms=4000 HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = read_response(s)
        assert status == 504 and body
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s)[0] == 200  # the client connection survives a 504
    port = free_port()
    router.set_table("other", port, [{"release": "r1", "role": "stable", "instances": [
        {"id": "gone", "host": "127.0.0.1", "port": free_port(), "ready": True}]}], {"r1": 100})
    assert first_status(raw_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == 502
    router.set_table("other", port, [], {})
    assert first_status(raw_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == 503


def test_rate_limit_and_security_headers(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("dev", port, [pool("r1", [a])], {"r1": 100}, settings={
        "rate_limit": {"rps": 1, "burst": 3, "paths": [{"prefix": "/login", "rps": 0.5, "burst": 1}]},
    })
    statuses = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(5):
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            status, headers, _ = read_response(s)
            statuses.append(status)
            assert "x-frame-options" not in headers  # dev: no security headers by default
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        assert int(headers["retry-after"]) >= 1
    port2 = free_port()
    router.set_table("prod", port2, [pool("r1", [a])], {"r1": 100},
                     settings={"security_headers": {"X-Frame-Options": "SAMEORIGIN"}})
    conn = http.client.HTTPConnection("127.0.0.1", port2, timeout=10)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.getheader("X-Frame-Options") == "SAMEORIGIN" and r.getheader("X-Content-Type-Options") is None


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_access_log_and_prometheus(router: RouterProc, upstreams: Callable[..., list[Upstream]],
                                       tmp_path: Path) -> None:
    (a,) = upstreams("a1")
    cert, key = make_cert(tmp_path)
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100},
                     settings={"tls": {"cert": str(cert), "key": str(key)}})
    ctx = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    conn.request("GET", "/headers", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    r = conn.getresponse()
    got = {k.lower(): v for k, v in json.loads(r.read())["headers"]}
    assert got["x-forwarded-proto"] == "https"
    assert r.getheader("Strict-Transport-Security", "").startswith("max-age=")
    log = router.log_dir / "access.log"
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text().strip()):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.1)
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["env"] == "prod" and line["release"] == "r1" and line["instance"] == "a1"
    assert line["status"] == 200 and line["path"] == "/headers" and line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert set(line) >= {"ts", "method", "duration_ms", "bytes_in", "bytes_out", "client", "request_id", "span_id"}
    text = urllib.request.urlopen(f"http://127.0.0.1:{router.admin_port}/metrics", timeout=10).read().decode()
    assert 'http_requests_total{env="prod",release="r1",code="200"} 1' in text
    assert 'http_request_duration_seconds_count{env="prod",release="r1"} 1' in text
    with pytest.raises(Exception, match="tls"):
        router.set_table("prod2", free_port(), [pool("r1", [a])], settings={"tls": {"cert": "/nope", "key": "/nope"}})
