"""Shared helpers for the router benchmarks: start a router process and an nginx upstream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from shipyard.primitives.routerproto import RouterClient, RouterUnavailable  # noqa: E402


def start_router(tmp: Path, port: int, upstream_port: int, settings: dict[str, object] | None = None,
                 log: bool = False, src: Path | None = None) -> subprocess.Popen[bytes]:
    """``src``: another checkout's ``src`` directory to run the router from (A/B comparisons); the
    environment variable BENCH_ROUTER_SRC does the same for benches without a ``--src`` option."""
    sock = tmp / "router.sock"
    cmd = [sys.executable, "-m", "shipyard.router", "--socket", str(sock)]
    if log:
        cmd += ["--log-dir", str(tmp / "router-logs")]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(src or os.environ.get("BENCH_ROUTER_SRC") or ROOT / "src")})
    client = RouterClient(sock)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except RouterUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.call("set_table", table={
        "env": "bench", "port": port, "bind": "127.0.0.1", "weights": {"r1": 100},
        "pools": [{"release": "r1", "role": "stable",
                   "instances": [{"id": "up", "host": "127.0.0.1", "port": upstream_port, "ready": True}]}],
        "settings": settings or {},
    })
    return proc


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")
