"""Added latency: requests at a fixed rate (default 1,000 rps) to an nginx upstream, direct and through the
router, one request per keep-alive connection slot; prints P50/P99 of each and the difference.

    python bench/router_latency.py [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from router_common import free_port, nginx, start_router, wait_port


async def run(port: int, rate: float, seconds: float, conns: int = 32) -> list[float]:
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    lat: list[float] = []
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

    async def one() -> None:
        r, w = await pool.get()
        t0 = loop.time()
        w.write(req)
        head = await r.readuntil(b"\r\n\r\n")
        n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await r.readexactly(n)
        lat.append(loop.time() - t0)
        pool.put_nowait((r, w))

    start = loop.time()
    tasks = []
    i = 0
    while loop.time() - start < seconds:
        i += 1
        target = start + i / rate  # open model: sends on schedule whatever the latency
        await asyncio.sleep(max(0.0, target - loop.time()))
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    return lat


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px = free_port(), free_port()
        procs = [nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }')]
        wait_port(up)
        procs.append(start_router(tmp, px, up))
        try:
            direct = asyncio.run(run(up, args.rate, args.seconds))
            routed = asyncio.run(run(px, args.rate, args.seconds))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    for name, v in (("direct", direct), ("router", routed)):
        print(f"{name:7s} n={len(v)} p50={pct(v, 0.5):.3f} ms p99={pct(v, 0.99):.3f} ms")
    print(f"added   p50={pct(routed, 0.5) - pct(direct, 0.5):.3f} ms (goal ≤ 0.3) "
          f"p99={pct(routed, 0.99) - pct(direct, 0.99):.3f} ms (goal ≤ 2)")


if __name__ == "__main__":
    main()
