"""Per-request CPU cost of the router: nginx as the upstream, wrk as the load, and the router process's own
CPU time (utime + stime from /proc) divided by the requests it served — a figure the shared machine's
noise barely moves, unlike requests/s. With ``--profile`` py-spy samples the router meanwhile and the
functions with the most own time are printed.

    python bench/router_cpu.py [--duration 8] [--connections 64] [--no-access-log] [--profile]
    python bench/router_cpu.py --src /tmp/before/src --src src --rounds 5    # A/B, alternating

With several ``--src`` (other checkouts' ``src`` directories) the routers run one after the other, round
by round, and the median µs per request of each is printed with its ratio to the first.

Needs nginx and wrk (scripts/setup-system.sh bench); --profile needs py-spy (pip install py-spy).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_common import cpu_s, free_port, nginx, start_router, wait_port  # noqa: E402


def wrk(port: int, duration: float, connections: int) -> int:
    out = subprocess.run(["wrk", "-t1", "-c", str(connections), "-d", f"{duration:g}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    return int(m.group(1)) if m else 0


def top_own_time(collapsed: Path, n: int = 25) -> list[tuple[float, str]]:
    """py-spy's collapsed stacks → (share of samples, function) by own (leaf) time."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        own[leaf] += int(count)
        total += int(count)
    return [(c / total, f) for f, c in own.most_common(n)]


def measure(tmp: Path, up: int, src: Path | None, args: argparse.Namespace) -> tuple[int, float, float]:
    """(requests, router user and system CPU seconds) for one run of wrk through a fresh router from ``src``."""
    px = free_port()
    router = start_router(tmp, px, up, log=not args.no_access_log, src=src)
    try:
        wait_port(px)
        wrk(px, 1, args.connections)  # warm-up
        spy = None
        if args.profile:
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(router.pid), "--format", "raw", "--rate", "250",
                                    "--output", str(tmp / "stacks.txt"), "--duration", f"{args.duration:g}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0 = cpu_s(router.pid)
        n = wrk(px, args.duration, args.connections)
        c1 = cpu_s(router.pid)
        if spy is not None:
            spy.wait(60)
    finally:
        router.terminate()
        router.wait(10)
    return n, c1[0] - c0[0], c1[1] - c0[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-access-log", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--src", type=Path, action="append", help="a checkout's src directory (repeat for A/B)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    for tool in ("nginx", "wrk", *(("py-spy",) if args.profile else ())):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    srcs: list[Path | None] = list(args.src or [None])
    per_req: dict[int, list[float]] = {i: [] for i in range(len(srcs))}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up = free_port()
        upstream = nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }')
        try:
            wait_port(up)
            for _ in range(args.rounds):
                for i, src in enumerate(srcs):
                    n, user, system = measure(tmp, up, src, args)
                    cpu = user + system
                    per_req[i].append(cpu / n * 1e6)
                    print(f"{src or 'src'}: {n:,} requests, {n / args.duration:,.0f} req/s; router CPU {cpu:.2f} s"
                          f" → {cpu / n * 1e6:.1f} µs per request ({user / n * 1e6:.1f} user +"
                          f" {system / n * 1e6:.1f} system)", flush=True)
        finally:
            upstream.terminate()
            upstream.wait(10)
        print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, access log {'off' if args.no_access_log else 'on'}")
        base = statistics.median(per_req[0])
        for i, src in enumerate(srcs):
            med = statistics.median(per_req[i])
            print(f"  {src or 'src'}: median {med:.1f} µs per request ({med / base:.2f} × the first)")
        if args.profile and (tmp / "stacks.txt").exists():
            for share, fn in top_own_time(tmp / "stacks.txt"):
                print(f"  {share * 100:5.1f} %  {fn}")


if __name__ == "__main__":
    main()
