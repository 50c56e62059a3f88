"""An instance that writes head and body in two writes must not cost a delayed ACK (~40 ms) per request."""

from __future__ import annotations

import http.client
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from shipyard.primitives.pgcluster import free_port

from .helpers import HERE, RouterProc, wait_port


@pytest.fixture
def splitwrite_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "splitwrite_app.py"), str(port)])
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_split_write_upstream_is_not_held_by_delayed_ack(router: RouterProc, splitwrite_port: int) -> None:
    port = free_port()
    router.set_table("staging", port, [{"release": "r1", "instances": [
        {"id": "sw", "host": "127.0.0.1", "port": splitwrite_port}]}], {"r1": 100})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    took = []
    for _ in range(20):
        t0 = time.perf_counter()
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.read() == b"ok\n" and r.status == 200
        took.append(time.perf_counter() - t0)
    conn.close()
    # Without TCP_QUICKACK on the upstream socket every keep-alive request after the first waits ~40 ms.
    assert statistics.median(took) < 0.015, took
