"""Helpers for router tests: real router/upstream processes and small raw-HTTP clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.primitives.routerproto import RouterClient, RouterUnavailable

HERE = Path(__file__).parent


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port}")


@dataclass
class Upstream:
    id: str
    port: int
    proc: subprocess.Popen[bytes]

    def inst(self, ready: bool = True) -> dict[str, Any]:
        return {"id": self.id, "host": "127.0.0.1", "port": self.port, "ready": ready}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class RouterProc:
    sock: Path
    log_dir: Path
    proc: subprocess.Popen[bytes]
    admin_port: int
    client: RouterClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = RouterClient(self.sock)

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        return self.client.call(op, timeout=kw.pop("timeout", 30.0), **kw)

    def set_table(self, env: str, port: int, pools: list[dict[str, Any]], weights: dict[str, float] | None = None,
                  sticky: dict[str, str] | None = None, settings: dict[str, Any] | None = None,
                  **extra: Any) -> dict[str, Any]:
        table = {"env": env, "port": port, "pools": pools, "weights": weights or {}, "sticky": sticky,
                 "settings": settings or {}, "bind": "127.0.0.1", **extra}
        return self.call("set_table", table=table)


def start_router(tmp: Path, admin_port: int = 0, extra: list[str] | None = None) -> RouterProc:
    sock = tmp / "run" / "router.sock"
    log_dir = tmp / "logs" / "router"
    cmd = [sys.executable, "-m", "shipyard.router", "--socket", str(sock), "--log-dir", str(log_dir)]
    if admin_port:
        cmd += ["--admin-port", str(admin_port)]
    cmd += extra or []
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)
    rp = RouterProc(sock, log_dir, proc, admin_port)
    deadline = time.monotonic() + 30
    while True:
        try:
            rp.client.ping(timeout=2)
            return rp
        except RouterUnavailable:
            if proc.poll() is not None:
                raise RuntimeError(f"router exited: {proc.stderr.read().decode() if proc.stderr else ''}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop_router(rp: RouterProc) -> None:
    if rp.proc.poll() is None:
        try:
            rp.call("shutdown", grace=5)
        except Exception:
            pass
        try:
            rp.proc.wait(15)
        except subprocess.TimeoutExpired:
            rp.proc.kill()
            rp.proc.wait()


def pool(release: str, ups: list[Upstream], role: str = "stable", ready: bool = True) -> dict[str, Any]:
    return {"release": release, "role": role, "instances": [u.inst(ready) for u in ups]}


def raw_exchange(port: int, data: bytes, timeout: float = 10.0, until_close: bool = True) -> bytes:
    """Send bytes, read until the router closes (or timeout); returns everything read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not until_close:
            return s.recv(65536)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:
            pass
        return out


_leftover: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(s: socket.socket, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Read one response from a socket (Content-Length, chunked, or until close); bytes past it are kept
    for the next call, so pipelined responses can be read one by one."""
    buf = _leftover.pop(s, b"")

    def more() -> bytes:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        return chunk

    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if head_only or status in (204, 304) or 100 <= status < 200:
        _leftover[s] = rest
        return status, headers, b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            rest += more()
        _leftover[s] = rest[n:]
        return status, headers, rest[:n]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += more()
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                _leftover[s] = rest
                return status, headers, body
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return status, headers, rest
        rest += chunk


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a state that has no event to wait on (the router's counters), bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s")
        time.sleep(0.02)


def inflight(router: RouterProc, env: str, release: str) -> int:
    rel = router.call("stats", env=env, window_s=5)["releases"].get(release, {})
    return int(rel.get("inflight", 0))
