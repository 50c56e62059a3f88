"""Throughput: one tiny upstream (nginx returning 200) behind (a) nothing, (b) nginx, (c) HAProxy,
(d) shipyard's router — one worker/process each — loaded by wrk on loopback.

    python bench/router.py [--duration 10] [--connections 50] [--threads 1]

Prints requests/s for each and the ratio router / nginx. Needs nginx, haproxy and wrk
(scripts/setup-system.sh bench installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_common import free_port, start_router, wait_port  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-access-log", action="store_true", help="run the router without its access log")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "haproxy", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (scripts/setup-system.sh bench)")
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px_nginx, px_haproxy, px_router = free_port(), free_port(), free_port(), free_port()
        try:
            procs.append(nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }'))
            wait_port(up)
            procs.append(nginx(tmp, "proxy", px_nginx, f"""
  upstream app {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }}"""))
            procs.append(haproxy(tmp, px_haproxy, up))
            procs.append(start_router(tmp, px_router, up, log=not args.no_access_log))
            for listen_port in (px_nginx, px_haproxy, px_router):
                wait_port(listen_port)
            for name, port in (("direct", up), ("nginx", px_nginx), ("haproxy", px_haproxy), ("router", px_router)):
                wrk(port, 1, args.connections, args.threads)  # warm-up: pools, caches
                results[name] = wrk(port, args.duration, args.connections, args.threads)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    ratio = results["router"] / results["nginx"] if results.get("nginx") else 0.0
    if args.json:
        print(json.dumps({**results, "router_over_nginx": ratio}))
        return
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus · {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, one worker/process each")
    for name, rps in results.items():
        print(f"  {name:8s} {rps:12,.0f} req/s")
    print(f"  router / nginx = {ratio:.2f}  (goal ≥ 0.35)")


if __name__ == "__main__":
    main()
