"""Hardening over real sockets: clients that vanish mid-upload, deep pipelining, the listen backlog and
connect bursts, slow-drip bodies, frozen (SIGSTOPped) upstreams."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.primitives.pgcluster import free_port

from .helpers import RouterProc, Upstream, inflight, pool, read_response, wait_until


@pytest.fixture
def prod(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> Iterator[tuple[int, Upstream]]:
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100})
    yield port, a
    if a.proc.poll() is None:
        os.kill(a.proc.pid, signal.SIGCONT)  # a frozen upstream must be able to stop


def test_client_gone_mid_upload_frees_upstream_and_inflight_at_once(router: RouterProc,
                                                                      prod: tuple[int, Upstream]) -> None:
    port, _ = prod
    clients = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx")
        clients.append(s)
    wait_until(lambda: inflight(router, "prod", "r1") == 5, what="5 uploads in flight")
    for s in clients:
        s.close()
    t0 = time.monotonic()
    reply = router.call("drain", env="prod", release="r1", fields={"timeout": 10})
    assert reply == {"drained": True, "inflight": 0}
    assert time.monotonic() - t0 < 1.0
    assert router.call("stats", env="prod", window_s=60)["connections"] == 0


def test_deep_pipelining_is_not_mistaken_for_a_huge_head(prod: tuple[int, Upstream]) -> None:
    port, _ = prod
    one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(one * 2000 + one[:10])  # more than max_header_size + max_request_line in one read
        statuses = [read_response(s)[0]]  # the router has read the first part
        s.sendall(one[10:])
        statuses += [read_response(s)[0] for _ in range(2000)]
    assert statuses == [200] * 2001


def _listen_backlog(port: int) -> int:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    fields = out.split()
    assert fields and fields[0] == "LISTEN", out
    return int(fields[2])  # Send-Q of a listener: its backlog


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_listen_backlog_is_what_the_router_asks_for(prod: tuple[int, Upstream]) -> None:
    port, _ = prod
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert _listen_backlog(port) == min(4096, somaxconn)


def test_burst_of_five_thousand_connects_all_accepted(router: RouterProc, prod: tuple[int, Upstream]) -> None:
    port, _ = prod
    n = 5000
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        connected = 0
        deadline = time.monotonic() + 15
        while connected < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                sel.unregister(s)
                connected += 1
        assert connected == n
        wait_until(lambda: router.call("stats", env="prod", window_s=5)["connections"] == n, timeout=15,
                   what=f"{n} accepted connections")
    finally:
        sel.close()
        for s in socks:
            s.close()


def test_slow_drip_body_hits_the_total_body_deadline(router: RouterProc, prod: tuple[int, Upstream]) -> None:
    port, a = prod
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100},
                     settings={"body_timeout": "2s", "body_deadline": "2s"})
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        s.settimeout(0.4)
        got = b""
        while time.monotonic() - t0 < 10:
            try:
                s.sendall(b"x")  # well inside body_timeout each time: only the total deadline can end it
                got = s.recv(65536)
                break
            except TimeoutError:
                continue
            except OSError:
                break
        assert got.startswith(b"HTTP/1.1 408 "), got
        assert b"Connection: close" in got
        assert time.monotonic() - t0 < 5


def _freeze(up: Upstream) -> None:
    os.kill(up.proc.pid, signal.SIGSTOP)


def test_frozen_upstream_gives_504_and_its_connection_is_not_reused(router: RouterProc,
                                                                     prod: tuple[int, Upstream]) -> None:
    port, a = prod
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100},
                     settings={"response_timeout": "1s", "body_timeout": "30s"})
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s)[0] == 200  # leaves a pooled upstream connection
        _freeze(a)
        t0 = time.monotonic()
        s.sendall(b"GET /status?code=201 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s)[0] == 504
        assert time.monotonic() - t0 < 3
        os.kill(a.proc.pid, signal.SIGCONT)  # the instance now answers the request the router gave up on
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = read_response(s)
        assert (status, body) == (200, b"a1")  # not the stale 201 from the dropped connection


def test_frozen_upstream_that_stops_reading_an_upload_gives_504(router: RouterProc,
                                                                prod: tuple[int, Upstream]) -> None:
    port, a = prod
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100},
                     settings={"response_timeout": "1s", "body_timeout": "30s"})
    size = 64 * 1024 * 1024  # far more than the kernel buffers between router and instance hold
    _freeze(a)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size)

        def upload() -> None:
            try:
                s.sendall(b"\0" * size)
            except OSError:
                pass  # the router closed the connection after its answer

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            got = b"reset"
        assert got.startswith(b"HTTP/1.1 504 "), got
        assert time.monotonic() - t0 < 5
    sender.join(10)
