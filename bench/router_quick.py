"""Quick throughput check without nginx or wrk: a minimal uvloop upstream, the router, and an asyncio load
generator (keep-alive, one request at a time per connection). For before/after comparisons of a change
on the same machine; the absolute figure is bounded by the Python client, not only the router.

    python bench/router_quick.py [--seconds 5] [--connections 32] [--direct]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from router_common import free_port, start_router, wait_port

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

UPSTREAM = f"""
import asyncio, sys
try:
    import uvloop
except ImportError:
    uvloop = None
RESP = {RESPONSE!r}
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, d):
        self.buf += d
        n = self.buf.count(b"\\r\\n\\r\\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\\r\\n\\r\\n") + 4:]
            self.t.write(RESP * n)
async def main():
    s = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await s.serve_forever()
(uvloop.run if uvloop else asyncio.run)(main())
"""


async def load_router(port: int, seconds: float, conns: int) -> tuple[int, float]:
    """The router adds headers, so read by framing: head to CRLFCRLF, then Content-Length bytes."""
    stop = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        r, w = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            w.write(REQUEST)
            head = await r.readuntil(b"\r\n\r\n")
            i = head.lower().find(b"content-length: ")
            n = int(head[i + 16:head.find(b"\r\n", i)])
            await r.readexactly(n)
            done += 1
        w.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return done, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--direct", action="store_true", help="also measure the upstream without the router")
    args = ap.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with tempfile.TemporaryDirectory() as d:
        up_port, port = free_port(), free_port()
        up = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)])
        router = start_router(Path(d), port, up_port)
        try:
            wait_port(up_port)
            wait_port(port)
            if args.direct:
                n, dt = run(load_router(up_port, args.seconds, args.connections))
                print(f"direct: {n / dt:,.0f} req/s")
            n, dt = run(load_router(port, args.seconds, args.connections))
            print(f"router: {n / dt:,.0f} req/s ({args.connections} connections, {args.seconds:g} s)")
        finally:
            router.terminate()
            up.terminate()
            router.wait(10)
            up.wait(10)


if __name__ == "__main__":
    main()
