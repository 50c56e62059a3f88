"""Router workers: one router process vs two on the same port (SO_REUSEPORT, as ``[router] workers = 2``
makes the control plane run them), in front of one nginx upstream, loaded by wrk; alternating runs.

    python bench/router_workers.py [--runs 3] [--duration 8] [--connections 64]

Prints requests/s per run and the median ratio two workers / one. On a 2-core machine wrk itself needs
most of a core, so two router workers share what is left: the ratio says what a second core would give only
where the load generator runs elsewhere. Needs nginx and wrk (scripts/setup-system.sh bench).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_common import free_port, nginx, start_router, wait_port, wrk  # noqa: E402


def _routers(tmp: Path, n: int, port: int, upstream: int) -> list[subprocess.Popen[bytes]]:
    procs = []
    for k in range(n):
        d = tmp / f"w{k}"
        d.mkdir()
        procs.append(start_router(d, port, upstream, log=True))  # access log on: the default
    wait_port(port)
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (scripts/setup-system.sh bench)")
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up = free_port()
        upstream = nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }')
        try:
            wait_port(up)
            for run in range(args.runs):
                for n in (1, 2) if run % 2 == 0 else (2, 1):
                    port = free_port()
                    run_dir = tmp / f"run{run}-{n}"
                    run_dir.mkdir()
                    procs = _routers(run_dir, n, port, up)
                    try:
                        wrk(port, 1, args.connections, 1)  # warm-up
                        results[n].append(wrk(port, args.duration, args.connections, 1))
                    finally:
                        _stop(procs)
        finally:
            _stop([upstream])
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus · {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.runs} alternating runs, access log on")
    for n in (1, 2):
        print(f"  {n} worker{'s' if n > 1 else ' '}  " + "  ".join(f"{r:10,.0f}" for r in results[n])
              + f"   median {statistics.median(results[n]):10,.0f} req/s")
    print(f"  two workers / one = {two / one:.2f}")


if __name__ == "__main__":
    main()
