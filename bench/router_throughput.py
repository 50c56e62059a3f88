"""Throughput against nginx: one tiny upstream (nginx returning 200) behind nginx and behind shipyard's
router, one worker/process each, default router settings (access log on), loaded by wrk on loopback in
alternating runs (nginx, router, nginx, router...), plus the CPU each proxy spent per request.

    python bench/router_throughput.py [--runs 5] [--duration 6] [--connections 64] [--haproxy] [--direct]
                                      [--no-access-log] [--before /path/to/other/src] [--json]

Prints every run, the median ratio router / nginx over the runs (each run's router figure over the nginx
figure measured just before it), the µs of CPU per request of both proxies (utime + stime from /proc over
the requests served), the load average around the run and whether the router ran compiled
(shipyard.router.native), and a last line starting with VERDICT against issue 17's bar (≥ 0.5 × nginx).
The verdict is "not conclusive" when nginx itself cost more than 1.2 × its quiet-machine CPU per request
(``NGINX_QUIET_US``; BENCH_NGINX_QUIET_US on another machine): a slowed reference lifts the ratio.
``--before SRC`` adds a second router run from another checkout's ``src`` in the same alternation (a
before/after in one run; its own ratio is printed, the verdict is the first router's).
The ratio needs a quiet machine (wrk, the upstream and the proxy share the cores); CPU per request moves
much less with the load. BENCH_ROUTER_SRC=/path/to/src runs another checkout's router.
Needs nginx and wrk (haproxy with --haproxy): scripts/setup-system.sh bench.
"""

from __future__ import annotations

import argparse
import json
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

from router_common import (  # noqa: E402
    RouterClient,
    cpu_s,
    free_port,
    haproxy,
    nginx,
    start_router,
    wait_port,
    wrk,
)

BAR = 0.5  # issue 17: router ≥ 0.5 × nginx with default settings
# nginx's own CPU per request in the quiet run of 2026-12-02 07:42 on this VM kind (docs/benchmarks.md). A busy
# or throttled machine slows nginx more than the router (it has less of its own work to hide the kernel's
# behind), which lifts the ratio; a run whose reference costs more than SLOWED × this proves nothing.
NGINX_QUIET_US = float(os.environ.get("BENCH_NGINX_QUIET_US", "10.5"))
SLOWED = 1.2


def _run(port: int, pid: int | None, args: argparse.Namespace) -> tuple[float, float | None]:
    """(requests/s, µs of CPU per request of process ``pid``) for one wrk run."""
    c0 = cpu_s(pid) if pid else None
    rps = wrk(port, args.duration, args.connections, 1)
    if c0 is None or not rps or pid is None:
        return rps, None
    c1 = cpu_s(pid)
    return rps, (c1[0] - c0[0] + c1[1] - c0[1]) / (rps * args.duration) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--haproxy", action="store_true", help="also measure HAProxy (each run)")
    ap.add_argument("--direct", action="store_true", help="also measure the upstream without a proxy (once)")
    ap.add_argument("--no-access-log", action="store_true", help="run the router without its access log")
    ap.add_argument("--before", type=Path, help="another checkout's src: its router runs in the same alternation")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "wrk", *(("haproxy",) if args.haproxy else ())):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (run make setup, or scripts/setup-system.sh bench)")
    procs: list[subprocess.Popen[bytes]] = []
    rps: dict[str, list[float]] = {"nginx": [], "router": [], "before": [], "haproxy": [], "direct": []}
    cpu: dict[str, list[float]] = {"nginx": [], "router": [], "before": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px_nginx, px_router, px_haproxy = free_port(), free_port(), free_port(), free_port()
        try:
            procs.append(nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }'))
            wait_port(up)
            proxy = nginx(tmp, "proxy", px_nginx, f"""
  upstream app {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }}""")
            procs.append(proxy)
            router = start_router(tmp, px_router, up, log=not args.no_access_log)
            procs.append(router)
            native = bool(RouterClient(tmp / "router.sock").ping().get("native"))
            targets = [("nginx", px_nginx, proxy.pid), ("router", px_router, router.pid)]
            if args.before:
                px_before = free_port()
                (tmp / "before").mkdir()
                before = start_router(tmp / "before", px_before, up, log=not args.no_access_log, src=args.before)
                procs.append(before)
                targets.append(("before", px_before, before.pid))
            if args.haproxy:
                procs.append(haproxy(tmp, px_haproxy, up))
                targets.append(("haproxy", px_haproxy, None))
            for _, port, _ in targets:
                wait_port(port)
                wrk(port, 1, args.connections, 1)  # warm-up: pools, caches
            if args.direct:
                rps["direct"].append(wrk(up, args.duration, args.connections, 1))
            for i in range(args.runs):
                for name, port, pid in targets:
                    r, c = _run(port, pid, args)
                    rps[name].append(r)
                    if c is not None:
                        cpu[name].append(c)
                if not args.json:
                    line = "  ".join(f"{n} {rps[n][-1]:8,.0f}" for n, _, _ in targets)
                    cpus = ", ".join(f"{n} {cpu[n][-1]:.1f}" for n, _, _ in targets if n in cpu)
                    print(f"run {i + 1}: {line} req/s → router / nginx {rps['router'][-1] / rps['nginx'][-1]:.2f};"
                          f" CPU µs/request {cpus}", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    load_after = os.getloadavg()
    ratios = [r / n for r, n in zip(rps["router"], rps["nginx"], strict=True) if n]
    ratio = statistics.median(ratios) if ratios else 0.0
    med = {k: statistics.median(v) for k, v in rps.items() if v}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items() if v}
    log = "off" if args.no_access_log else "on"
    if rps["before"] and not args.json:
        before_ratio = statistics.median(b / n for b, n in zip(rps["before"], rps["nginx"], strict=True) if n)
        print(f"before ({args.before}): router / nginx = {before_ratio:.2f}; CPU µs/request median"
              f" {cpu_med['before']:.1f} → {cpu_med['router']:.1f} ({cpu_med['router'] / cpu_med['before']:.2f} ×)")
    build = "compiled" if native else "plain Python"
    ref_us = cpu_med.get("nginx", 0.0)
    slowed = ref_us > SLOWED * NGINX_QUIET_US
    meets = ratio >= BAR and not slowed
    outcome = (f"not conclusive: nginx took {ref_us:.1f} µs per request, over {SLOWED} × its quiet"
               f" {NGINX_QUIET_US:g} µs (a slowed reference lifts the ratio)" if slowed
               else f"{'meets' if meets else 'below'} the {BAR} bar (nginx at {ref_us:.1f} µs per request,"
                    f" quiet reference {NGINX_QUIET_US:g} µs)")
    verdict = (f"VERDICT: router / nginx = {ratio:.2f} (median of {len(ratios)} alternating runs, access log {log},"
               f" router {build}, load average {load_before[0]:.1f} → {load_after[0]:.1f} on {os.cpu_count()} cpus)"
               f" — {outcome}")
    if args.json:
        print(json.dumps({"runs": rps, "cpu_us_per_request": cpu, "ratios": ratios, "router_over_nginx": ratio,
                          "median_rps": med, "median_cpu_us": cpu_med, "access_log": log, "native": native,
                          "load_before": load_before, "load_after": load_after, "meets_bar": meets,
                          "reference_slowed": slowed, "nginx_quiet_us": NGINX_QUIET_US}))
        return
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus · {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, one worker/process each; medians:")
    for name, value in med.items():
        extra = f"   {cpu_med[name]:.1f} µs CPU per request" if name in cpu_med else ""
        print(f"  {name:8s} {value:12,.0f} req/s{extra}")
    print(verdict)


if __name__ == "__main__":
    main()
