"""Shared helpers for the router benchmarks: start a router process, nginx (upstream or proxy), HAProxy, wrk."""

from __future__ import annotations

import os
import re
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


def nginx(tmp: Path, name: str, port: int, body: str) -> subprocess.Popen[bytes]:
    d = tmp / name
    (d / "logs").mkdir(parents=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  {body.replace("PORT", str(port))}
}}
""")
    return subprocess.Popen(["nginx", "-p", str(d), "-c", str(conf)], stderr=subprocess.DEVNULL)


def haproxy(tmp: Path, port: int, upstream: int) -> subprocess.Popen[bytes]:
    conf = tmp / "haproxy.cfg"
    conf.write_text(f"""
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server s1 127.0.0.1:{upstream}
""")
    return subprocess.Popen(["haproxy", "-db", "-f", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=None)


def wrk(port: int, duration: float, connections: int, threads: int) -> float:
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  warning: {errors.group(1)} non-2xx responses", file=sys.stderr)
    return float(m.group(1)) if m else 0.0


def cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck
