"""Accuracy: verify's latency percentiles against hey's at the same rate on the same service.

The service (started here, in its own process) answers every request after a delay drawn from a
log-normal distribution (median 10 ms, σ 0.5 → p95 ≈ 23 ms, p99 ≈ 32 ms), so latencies are dominated by
the service, not by either tool. hey is closed-loop; rate-limited with many workers (each worker sends
at most q/s and waits far less than 1/q for its answer) it offers the same arrival rate as verify's
open model, and with no stall the two models must agree.

By default both tools run at the same time, each at the full rate, so they sample the same service under
the same conditions (on a busy shared machine, conditions drift between consecutive runs more than the
tools differ); --sequential runs one after the other instead.

    .venv/bin/python bench/verify_accuracy.py [--rate 500] [--seconds 10] [--sequential]

Prints P50/P95/P99 of both, their differences (target: within 10 %) and verify's achieved rate
(target: within 1 % of the requested rate).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from verify_common import free_port, wait_port  # noqa: E402

from shipyard.engine.verify.runner import run_verify  # noqa: E402
from shipyard.primitives.spec.verify import VerifySpec  # noqa: E402

SERVICE = r'''
import asyncio, random, sys
import uvloop
rng = random.Random(1)
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, d):
        self.buf += d
        while b"\r\n\r\n" in self.buf:
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            delay = rng.lognormvariate(-4.605, 0.5)  # median e^-4.605 s = 10 ms
            asyncio.get_running_loop().call_later(delay, self.reply)
    def reply(self):
        if not self.t.is_closing():
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]), backlog=2048)
    async with srv: await srv.serve_forever()
uvloop.run(main())
'''


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def start_hey(url: str, rate: float, seconds: float) -> subprocess.Popen[str]:
    hey = shutil.which("hey")
    if hey is None:
        sys.exit("hey is not installed (Debian: apt-get install hey)")
    workers = max(1, int(rate // 10))  # 10 req/s each: 100 ms between sends, far above the service's latency
    return subprocess.Popen([hey, "-z", f"{seconds:g}s", "-c", str(workers), "-q", f"{rate / workers:g}", "-o",
                             "csv", url + "/"], stdout=subprocess.PIPE, text=True)


def hey_results(proc: subprocess.Popen[str], seconds: float) -> dict[str, float]:
    out, _ = proc.communicate(timeout=seconds + 60)
    rows = list(csv.DictReader(io.StringIO(out)))
    lat = sorted(float(r["response-time"]) * 1000 for r in rows)
    return {"p50": quantile(lat, 0.5), "p95": quantile(lat, 0.95), "p99": quantile(lat, 0.99),
            "rate": len(rows) / seconds, "n": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sequential", action="store_true", help="one tool after the other instead of together")
    args = ap.parse_args()
    port = free_port()
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(port)])
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        spec = VerifySpec(rate=args.rate, duration=args.seconds)
        if args.sequential:
            h = hey_results(start_hey(url, args.rate, args.seconds), args.seconds)
            r = asyncio.run(run_verify(url, spec))
        else:
            hey = start_hey(url, args.rate, args.seconds)
            r = asyncio.run(run_verify(url, spec))
            h = hey_results(hey, args.seconds)
    finally:
        service.terminate()
        service.wait(10)
    v = {"p50": r.latency.p50, "p95": r.latency.p95, "p99": r.latency.p99}
    how = "one after the other" if args.sequential else "both at once"
    print(f"rate {args.rate:g}/s for {args.seconds:g}s against a log-normal service (median 10 ms), {how}")
    print(f"{'':6} {'verify':>9} {'hey':>9} {'diff':>7}")
    worst = 0.0
    for k in ("p50", "p95", "p99"):
        diff = (v[k] - h[k]) / h[k]
        worst = max(worst, abs(diff))
        print(f"{k:6} {v[k]:>7.2f}ms {h[k]:>7.2f}ms {diff:>+7.1%}")
    rate_err = (r.rate_achieved - args.rate) / args.rate
    print(f"requests: verify {r.requests}, hey {h['n']:.0f} ({h['rate']:.1f}/s)")
    print(f"verify achieved {r.rate_achieved:.1f}/s ({rate_err:+.2%} of requested); "
          f"generator CPU {r.generator.cpu_percent if r.generator else float('nan'):.0f}%")
    ok = worst <= 0.10 and abs(rate_err) <= 0.01
    print(f"largest percentile difference {worst:.1%}: {'PASS' if ok else 'FAIL'} (targets: 10 %, rate 1 %)")
    for w in r.warnings:
        print(f"warning: {w}")


if __name__ == "__main__":
    main()
