"""Split-write upstream: an instance that writes each response head and body in two writes (Python's
http.server, as Flask's dev server) with a fixed service time, loaded by wrk at low concurrency —
directly, through nginx and through shipyard's router, alternating targets round by round in one run.

    python bench/router_splitwrite.py [--service-ms 20] [--connections 4] [--duration 5] [--rounds 3]

Prints P50/P99 latency per target and round. The upstream's own Nagle waits for the peer's delayed ACK of
the head (~40 ms on Linux); the router acknowledges at once on its upstream sockets (TCP_QUICKACK), so its
P50 stays near the service time while direct and nginx pay the +40 ms. Needs nginx and wrk.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_common import (  # noqa: E402
    ROOT,
    free_port,
    nginx,  # noqa: E402
    start_router,
    wait_port,
)

SPLITWRITE_APP = ROOT / "tests" / "router" / "splitwrite_app.py"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_latency(port: int, duration: float, connections: int) -> tuple[float, float]:
    """(P50, P99) in ms from ``wrk --latency``."""
    out = subprocess.run(
        ["wrk", "-t1", "-c", str(connections), "-d", f"{duration:g}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise RuntimeError(f"no {p}% line in wrk output:\n{out}")
        return float(m.group(1)) * _UNITS[m.group(2)]

    return pct("50"), pct("99")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--service-ms", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (scripts/setup-system.sh bench)")
    procs: list[subprocess.Popen[bytes]] = []
    p50s: dict[str, list[float]] = {"direct": [], "nginx": [], "router": []}
    p99s: dict[str, list[float]] = {k: [] for k in p50s}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px_nginx, px_router = free_port(), free_port(), free_port()
        try:
            procs.append(subprocess.Popen([sys.executable, str(SPLITWRITE_APP), str(up), f"{args.service_ms:g}"]))
            wait_port(up)
            procs.append(nginx(tmp, "proxy", px_nginx, f"""
  upstream app {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }}"""))
            procs.append(start_router(tmp, px_router, up, log=True))
            for port in (px_nginx, px_router):
                wait_port(port)
            targets = (("direct", up), ("nginx", px_nginx), ("router", px_router))
            for _name, port in targets:
                wrk_latency(port, 1, args.connections)  # warm-up: pools
            for _ in range(args.rounds):
                for name, port in targets:
                    p50, p99 = wrk_latency(port, args.duration, args.connections)
                    p50s[name].append(p50)
                    p99s[name].append(p99)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    med = {name: statistics.median(v) for name, v in p50s.items()}
    if args.json:
        print(json.dumps({"service_ms": args.service_ms, "p50": p50s, "p99": p99s, "median_p50": med}))
        return
    print(f"split-write upstream, service {args.service_ms:g} ms, wrk -t1 -c{args.connections} "
          f"-d{args.duration:g}s, {args.rounds} alternating rounds")
    for name in p50s:
        rounds = "  ".join(f"{a:6.2f}/{b:6.2f}" for a, b in zip(p50s[name], p99s[name], strict=True))
        print(f"  {name:7s} P50/P99 ms per round: {rounds}   median P50 {med[name]:.2f} ms "
              f"(+{med[name] - args.service_ms:.2f} over the service time)")


if __name__ == "__main__":
    main()
