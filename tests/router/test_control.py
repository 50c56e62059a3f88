"""The control socket: tables, weights, blue-green under load, drain, pause, maintenance, stats."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.primitives.metrics import Histogram, bucket_bounds
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.routerproto import AsyncRouterClient, RouterClient, RouterError, RouterUnavailable

from .helpers import RouterProc, Upstream, pool, read_response


def get_many(port: int, n: int, path: str = "/", batch: int = 100) -> Counter[str]:
    """n GETs pipelined in batches on one connection; counts X-Instance."""
    seen: Counter[str] = Counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        left = n
        while left:
            k = min(batch, left)
            s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n" * k).encode())
            for _ in range(k):
                status, headers, _ = read_response(s)
                assert status == 200
                seen[headers["x-instance"]] += 1
            left -= k
    return seen


def test_weights_honoured_over_ten_thousand_requests(router: RouterProc,
                                                     upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("a1", "b1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a]), pool("r2", [b], role="canary")], {"r1": 90, "r2": 10})
    seen = get_many(port, 10_000)
    assert abs(seen["b1"] / 10_000 - 0.10) <= 0.02, seen
    router.call("set_weights", env="prod", weights={"r1": 25, "r2": 75})
    seen = get_many(port, 2_000)
    assert abs(seen["b1"] / 2_000 - 0.75) <= 0.02, seen
    table = router.call("get_table", env="prod")["table"]
    assert table["weights"] == {"r1": 25.0, "r2": 75.0}
    with pytest.raises(RouterError, match="no pool for release 'r9'"):
        router.call("set_weights", env="prod", weights={"r9": 100})


def test_unready_skipped_and_failed_connect_retried(router: RouterProc,
                                                    upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("a1", "a2")
    port = free_port()
    router.set_table("prod", port, [{"release": "r1", "role": "stable",
                                     "instances": [a.inst(), b.inst(ready=False)]}], {"r1": 100})
    assert set(get_many(port, 20)) == {"a1"}
    dead = free_port()  # nothing listens there
    router.set_table("prod", port, [{"release": "r1", "role": "stable", "instances": [
        a.inst(), {"id": "dead", "host": "127.0.0.1", "port": dead, "ready": True}]}], {"r1": 100})
    assert get_many(port, 30, batch=1) == Counter({"a1": 30})
    stats = router.call("stats", env="prod", window_s=60)
    assert stats["releases"]["r1"]["instances"]["dead"]["upstream_errors"] >= 1
    a.stop()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 502


def test_blue_green_switch_under_keepalive_load_drops_nothing(router: RouterProc,
                                                              upstreams: Callable[..., list[Upstream]]) -> None:
    blue, green = upstreams("blue", "green")
    port = free_port()
    router.set_table("prod", port, [pool("blue", [blue])], {"blue": 100})
    stop = threading.Event()
    results: list[tuple[float, int, str]] = []
    errors: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while not stop.is_set():
                path = "/slow?ms=30" if i % 3 == 0 else "/"
                started = time.monotonic()
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                results.append((started, r.status, r.getheader("X-Instance") or ""))
        except Exception as exc:  # any failure is a dropped request
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(results) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    router.set_table("prod", port, [pool("blue", [blue]), pool("green", [green])], {"blue": 100, "green": 0})
    router.call("set_weights", env="prod", weights={"blue": 0, "green": 100})
    switched_at, switch_time = len(results), time.monotonic()
    reply = router.call("drain", env="prod", release="blue", timeout=20)
    assert reply == {"drained": True, "inflight": 0}
    router.set_table("prod", port, [pool("green", [green])], {"green": 100})
    blue.stop()
    while len(results) < switched_at + 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert all(status == 200 for _, status, _ in results)
    after = [inst for started, _, inst in results if started > switch_time]
    assert len(after) >= 200 and set(after) == {"green"}  # keep-alive connections moved to the new release
    assert results[0][2] == "blue"


def test_drain_waits_for_slow_inflight_requests(router: RouterProc,
                                                upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("old", "new")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a]), pool("r2", [b])], {"r1": 100, "r2": 0})
    answers: list[tuple[int, bytes]] = []

    def slow() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(s)
            answers.append((status, body))

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while router.call("stats", env="prod", window_s=5)["releases"].get("r1", {}).get("inflight", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    router.call("set_weights", env="prod", weights={"r1": 0, "r2": 100})
    t0 = time.monotonic()
    reply = router.call("drain", env="prod", release="r1", timeout=30)
    assert reply == {"drained": True, "inflight": 0}
    assert time.monotonic() - t0 > 0.5  # it waited for them
    for t in threads:
        t.join(30)
    assert answers == [(200, b"old")] * 3
    assert get_many(port, 5) == Counter({"new": 5})
    router.call("set_table", table={**router.call("get_table", env="prod")["table"]})
    assert router.call("get_table", env="prod")["draining"] == ["r1"]  # re-sent table keeps it drained
    short = router.call("drain", env="prod", release="r2", timeout=0.01)
    assert short["drained"] is True  # nothing in flight on r2 right now


def test_pause_resume_and_maintenance(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], {"r1": 100})
    router.call("pause", env="prod", max_pause=20)
    got: list[int] = []

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got.append(read_response(s)[0])

    t = threading.Thread(target=one)
    t.start()
    t.join(0.5)
    assert t.is_alive() and got == []  # held
    router.call("resume", env="prod")
    t.join(20)
    assert got == [200]
    router.call("pause", env="prod", max_pause=0.2)
    one()
    assert got[-1] == 503
    router.call("resume", env="prod")
    router.call("maintenance", env="prod", on=True, message="Back at <5pm>")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(s)
    assert status == 503 and b"Back at &lt;5pm&gt;" in body and headers["content-type"].startswith("text/html")
    router.call("maintenance", env="prod", on=False)
    one()
    assert got[-1] == 200


def test_stats_shape_and_histogram_bounds(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("a1", "b1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a]), pool("r2", [b], role="canary")], {"r1": 50, "r2": 50})
    get_many(port, 40, path="/slow?ms=20", batch=10)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /status?code=503 HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(s)
    st = router.call("stats", env="prod", window_s=30)
    r1, r2 = st["releases"]["r1"], st["releases"]["r2"]
    assert r1["requests"] + r2["requests"] == 41
    assert r1["status"]["5xx"] + r2["status"]["5xx"] == 1
    assert r2["role"] == "canary" and r2["weight"] == 50.0
    assert set(r1["instances"]) == {"a1"}
    h = Histogram.from_pairs(r1["histogram"])
    assert h.total == r1["requests"]
    assert 0.015 < r1["p50"] < 0.2
    lo, hi = bucket_bounds(r1["histogram"][0][0])
    assert lo < hi
    assert st["histogram_scheme"] and "unrouted" in st


def test_port_in_use_bad_tables_and_clients(router: RouterProc, upstreams: Callable[..., list[Upstream]],
                                            tmp_path: Path) -> None:
    (a,) = upstreams("a1")
    with pytest.raises(RouterError, match=f"port {a.port} is in use"):
        router.set_table("prod", a.port, [pool("r1", [a])])
    with pytest.raises(RouterError, match=r"table.pools\[0\].role"):
        router.set_table("prod", free_port(), [{"release": "r1", "role": "blue", "instances": []}])
    with pytest.raises(RouterError, match="table.settings"):
        router.set_table("prod", free_port(), [pool("r1", [a])], settings={"header_timeout": "soon"})
    with pytest.raises(RouterError, match="unknown environment 'nope'"):
        router.call("stats", env="nope", window_s=5)
    with pytest.raises(RouterError, match="unknown op"):
        router.call("frobnicate")
    router.set_table("prod", free_port(), [pool("r1", [a])])
    with pytest.raises(RouterError, match="drain: 'timeout' must be a number of seconds, got 'soon'"):
        router.call("drain", env="prod", release="r1", fields={"timeout": "soon"})
    router.call("remove_env", env="prod")
    assert router.call("ping")["envs"] == []
    with pytest.raises(RouterUnavailable):
        RouterClient(tmp_path / "none.sock").ping()
    import asyncio

    async def async_ping() -> dict[str, object]:
        return await AsyncRouterClient(router.sock).ping()

    assert asyncio.run(async_ping())["pid"] == router.proc.pid


def test_sticky_cookie_keeps_a_client_on_its_release(router: RouterProc,
                                                     upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("a1", "b1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a]), pool("r2", [b], role="canary")], {"r1": 50, "r2": 50},
                     sticky={"cookie": "rel"})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, headers, body = read_response(s)
        cookie = headers["set-cookie"].split(";")[0]
        for _ in range(10):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + cookie.encode() + b"\r\n\r\n")
            _, h2, body2 = read_response(s)
            assert body2 == body and "set-cookie" not in h2
