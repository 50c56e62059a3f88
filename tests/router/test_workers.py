"""Router workers for real: two router processes on one port (SO_REUSEPORT) driven by the control plane's
RouterLink — both take connections, the merged counts are the whole traffic, a killed worker comes back by
itself, and going back to one worker releases the port in the other. Plus the ``--replace`` handover under
load with no failed request."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shipyard.control.paths import Paths
from shipyard.control.routerlink import RouterLink
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.routerproto import ReleasePool, RoutedInstance, RouterClient, RoutingTable
from shipyard.primitives.spec.router import RouterEnvSpec

from .helpers import Upstream, raw_exchange, start_router, stop_router, wait_until

Ups = Callable[..., list[Upstream]]


def _get(port: int) -> bytes:
    return raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5)


def _table(port: int, up: Upstream, workers: int) -> RoutingTable:
    return RoutingTable(env="prod", port=port, bind="127.0.0.1",
                        pools=(ReleasePool("r1", "stable", (RoutedInstance(up.id, up.port),)),),
                        settings=RouterEnvSpec(workers=workers, bind="127.0.0.1"))


def _pid(paths: Paths, worker: int) -> int:
    return int(json.loads(paths.router_pid_of(worker).read_text())["pid"])


def test_two_workers_share_a_port_and_merge_their_counts(tmp_path: Path, upstreams: Ups) -> None:
    (up,) = upstreams("i1")
    paths = Paths(tmp_path)
    paths.ensure()
    port = free_port()
    restarts: list[str] = []

    async def go() -> None:
        link = RouterLink(paths, SystemClock())

        async def restarted(why: str) -> None:
            restarts.append(why)
            await link.push("prod", lambda: _table(port, up, 2))

        await link.ensure_running()
        keeper = asyncio.ensure_future(link.keep_running(restarted))
        try:
            await link.push("prod", lambda: _table(port, up, 2))
            pings = [await link._call_one(k, "ping", 3, {}) for k in (0, 1)]
            assert [p["worker"] for p in pings] == [0, 1] and pings[0]["pid"] != pings[1]["pid"]
            n = 120
            bodies = await asyncio.gather(*(asyncio.to_thread(_get, port) for _ in range(n)))
            assert all(b.startswith(b"HTTP/1.1 200") for b in bodies)
            per_worker = [(await link._call_one(k, "stats", 5, {"env": "prod", "window_s": 60}))["releases"]["r1"]
                          ["requests"] for k in (0, 1)]
            assert sum(per_worker) == n and min(per_worker) > 0, per_worker  # the kernel spread them
            merged = await link.call("stats", env="prod", window_s=60)
            assert merged["releases"]["r1"]["requests"] == n and merged["workers"] == 2
            await asyncio.sleep(1.1)  # the last second finishes in both workers
            slices = await link.call("slices", env="prod", since=0)
            assert sum(sum(s["status"]) for i in slices["instances"] for s in i["slices"]) == n
            assert (await link.call("drain", 15, env="prod", release="r1", timeout=5))["drained"] is True
            await link.call("undrain", env="prod", release="r1")

            # A killed worker is started again and gets its table back.
            old = _pid(paths, 1)
            os.kill(old, signal.SIGKILL)
            for _ in range(300):
                if restarts and _pid(paths, 1) != old:
                    break
                await asyncio.sleep(0.05)
            assert restarts and "router worker 1" in restarts[0], restarts
            assert (await link._call_one(1, "get_table", 5, {"env": "prod"}))["table"]["port"] == port

            # Back to one worker: worker 1 lets the port go; worker 0 answers everything.
            await link.push("prod", lambda: _table(port, up, 1))
            assert "prod" not in (await link._call_one(1, "ping", 3, {}))["envs"]
            bodies = await asyncio.gather(*(asyncio.to_thread(_get, port) for _ in range(20)))
            assert all(b.startswith(b"HTTP/1.1 200") for b in bodies)
        finally:
            await link.shutdown()
            keeper.cancel()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_replace_handover_under_load_fails_no_request(tmp_path: Path, upstreams: Ups) -> None:
    """docs/router.md's handover: a new router with --replace, the tables sent to it, SIGTERM to the old."""
    (up,) = upstreams("i1")
    port = free_port()
    table = {"env": "prod", "port": port, "bind": "127.0.0.1", "weights": {}, "sticky": None, "settings": {},
             "pools": [{"release": "r1", "role": "stable", "instances": [up.inst()]}]}
    old = start_router(tmp_path)
    old.call("set_table", table=table)
    results: list[int] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                results.append(200 if _get(port).startswith(b"HTTP/1.1 200") else 1)
            except OSError:
                results.append(0)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    new = None
    try:
        wait_until(lambda: len(results) > 50, what="load running")
        new = start_router(tmp_path, extra=["--replace"])
        # start_router returns on the first ping, which the old router may still answer: the new one has
        # taken over the control socket once a ping names its pid.
        wait_until(lambda: new.call("ping")["pid"] == new.proc.pid, what="the new router on the control socket")
        new.call("set_table", table=table)
        assert new.call("ping")["envs"] == ["prod"]
        before = len(results)
        old.proc.send_signal(signal.SIGTERM)
        assert old.proc.wait(35) == 0
        wait_until(lambda: len(results) > before + 100, what="load after the handover")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        if new is not None:
            stop_router(new)
        stop_router(old)
    err = new.proc.stderr.read().decode() if new.proc.stderr else ""
    assert "not handed over" not in err, err  # the same sockets, not a second SO_REUSEPORT bind
    failed = len(results) - results.count(200)
    assert failed == 0, f"{failed} of {len(results)} requests failed across the handover"


def test_worker_flag_names_its_access_log(tmp_path: Path, upstreams: Ups) -> None:
    (up,) = upstreams("i1")
    port = free_port()
    sock, logs = tmp_path / "w3.sock", tmp_path / "logs"
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.router", "--socket", str(sock), "--log-dir", str(logs),
                             "--worker", "3"], start_new_session=True)
    try:
        client = RouterClient(sock)
        wait_until(lambda: _answers(client), what="worker ping")
        client.call("set_table", fields={"table": {"env": "prod", "port": port, "bind": "127.0.0.1", "settings": {},
                                                   "pools": [{"release": "r1", "instances": [up.inst()]}]}})
        assert _get(port).startswith(b"HTTP/1.1 200")
        client.call("shutdown", fields={"grace": 2})
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (logs / "access-3.log").exists() and not (logs / "access.log").exists()


def _answers(client: RouterClient) -> bool:
    try:
        client.ping(timeout=1)
        return True
    except Exception:
        return False


def test_a_killed_router_refuses_no_connection(tmp_path: Path, upstreams: Ups) -> None:
    """The control plane holds worker 0's listening sockets: while the router is dead, new connections
    wait in the backlog instead of being refused, and the restarted router accepts them."""
    (up,) = upstreams("i1")
    paths = Paths(tmp_path)
    paths.ensure()
    port = free_port()
    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                outcomes.append("ok" if _get(port).startswith(b"HTTP/1.1 200") else "bad status")
            except ConnectionRefusedError:
                outcomes.append("refused")
            except OSError as exc:
                outcomes.append(type(exc).__name__)  # in flight at the kill: reset or cut short

    async def go() -> None:
        link = RouterLink(paths, SystemClock())
        restarted = asyncio.Event()

        async def again(why: str) -> None:
            await link.push("prod", lambda: _table(port, up, 1))
            restarted.set()

        await link.ensure_running()
        keeper = asyncio.ensure_future(link.keep_running(again))
        threads = [threading.Thread(target=load) for _ in range(4)]
        try:
            await link.push("prod", lambda: _table(port, up, 1))
            assert link.held() == [("127.0.0.1", port)]
            for t in threads:
                t.start()
            for _ in range(200):
                if len(outcomes) > 100:
                    break
                await asyncio.sleep(0.02)
            old = _pid(paths, 0)
            os.kill(old, signal.SIGKILL)
            killed_at = len(outcomes)
            await asyncio.wait_for(restarted.wait(), 20)
            assert _pid(paths, 0) != old
            for _ in range(300):
                if len(outcomes) > killed_at + 200:
                    break
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            await link.shutdown()
            keeper.cancel()
        assert not link.held()  # shutdown lets the ports go

    asyncio.run(asyncio.wait_for(go(), 90))
    assert outcomes.count("refused") == 0, outcomes.count("refused")
    assert len(outcomes) - outcomes.count("ok") <= 4, [o for o in outcomes if o != "ok"]  # ≤ one in flight per client
    wait_until(lambda: _port_free(port), what="the port let go by the router and the link")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT connections do not count
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_a_connection_accepted_before_sigterm_still_gets_its_answer(tmp_path: Path, upstreams: Ups) -> None:
    """The handover's one-in-thousands failure: a client connected just before the old router stopped
    listening and sent its request just after. A stopping router waits for such a connection's head (the
    requests it has accepted), and closes only idle keep-alive connections at once."""
    (up,) = upstreams("i1")
    port = free_port()
    rp = start_router(tmp_path)
    try:
        rp.call("set_table", table={"env": "prod", "port": port, "bind": "127.0.0.1", "weights": {}, "sticky": None,
                                    "settings": {}, "pools": [{"release": "r1", "role": "stable",
                                                               "instances": [up.inst()]}]})
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            wait_until(lambda: rp.call("stats", env="prod")["connections"] == 1, what="the connection accepted")
            rp.proc.send_signal(signal.SIGTERM)

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return False
                except OSError:
                    return True
            wait_until(refused, what="the listener closed")
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert rp.proc.wait(10) == 0
    finally:
        stop_router(rp)
