"""Capacity: how many requests/s the verify generator sends from one core against a fast upstream.

Starts a throwaway nginx (one worker, returns 200) on a free loopback port and runs the generator at a
few rates for a few seconds each, printing achieved rate, lateness, its own CPU use and latencies. The
generator's CPU time per request gives the rate one dedicated core sustains ("1-core cap"), a figure that
holds even when other work on a busy machine keeps the upstream from answering at full speed.

    .venv/bin/python bench/verify_capacity.py [--rates 5000,10000,15000] [--seconds 5] [--pin]

--pin puts the generator on CPU 0 and nginx on CPU 1 so neither steals the other's core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from verify_common import nginx  # noqa: E402

from shipyard.engine.verify.runner import run_verify  # noqa: E402
from shipyard.primitives.spec.verify import VerifySpec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="5000,10000,15000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--pin", action="store_true")
    args = ap.parse_args()
    with nginx() as url:
        if args.pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {0})
            _pin_nginx(url, 1)
        print(f"{'rate':>8} {'achieved':>10} {'late%':>6} {'dropped':>7} {'gen CPU%':>8} {'conns':>5} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'svc p50':>7} {'µs CPU/req':>10} {'1-core cap':>10} {'proc CPU s':>10}")
        for rate in (float(r) for r in args.rates.split(",")):
            spec = VerifySpec(rate=rate, duration=args.seconds, max_vus=1000)
            before = resource.getrusage(resource.RUSAGE_SELF)
            r = asyncio.run(run_verify(url, spec))
            after = resource.getrusage(resource.RUSAGE_SELF)
            proc_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            g = r.generator
            assert g is not None and r.service is not None
            # CPU time per request bounds what one dedicated core can generate, whatever else runs here.
            us = 1e6 * g.cpu_seconds / max(1, r.requests)
            print(f"{rate:>8.0f} {r.rate_achieved:>10.1f} {100 * g.late / max(1, r.requests):>6.2f} "
                  f"{g.dropped:>7} {g.cpu_percent:>8.1f} {g.connections:>5} {r.latency.p50:>7.3f} "
                  f"{r.latency.p99:>7.3f} {r.service.p50:>7.3f} {us:>10.1f} {1e6 / us:>10.0f} {proc_cpu:>10.2f}")
            for w in r.warnings:
                print(f"         warning: {w}")


def _pin_nginx(url: str, cpu: int) -> None:
    import psutil

    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            os.sched_setaffinity(conn.pid, {cpu})


if __name__ == "__main__":
    main()
