"""A small HTTP/1.1 keep-alive server for the verify tests, run as its own process.

    python target_server.py [--stall-every S --stall-for S --stall-at S] [--status PATH=CODE ...]

Prints ``READY <port>`` once listening. ``GET /__counts`` returns JSON {path: requests}. With a stall,
every response due in [stall_at + k·every, + stall_for) waits until that window ends, like a server
frozen by a GC pause or a lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stall-every", type=float, default=0.0)
    ap.add_argument("--stall-for", type=float, default=0.0)
    ap.add_argument("--stall-at", type=float, default=0.0)
    ap.add_argument("--status", action="append", default=[])
    args = ap.parse_args()
    statuses = {p: int(c) for p, c in (s.split("=", 1) for s in args.status)}
    counts: dict[str, int] = {}
    start = time.monotonic()

    def stall_left() -> float:
        if not args.stall_every:
            return 0.0
        t = time.monotonic() - start - args.stall_at
        if t < 0:
            return 0.0
        phase = t % args.stall_every
        return args.stall_for - phase if phase < args.stall_for else 0.0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if length:
                    await reader.readexactly(length)
                wait = stall_left()
                if wait > 0:
                    await asyncio.sleep(wait)
                if path == "/__counts":
                    body = json.dumps(counts).encode()
                    status = 200
                else:
                    key = f"{method} {path}"
                    counts[key] = counts.get(key, 0) + 1
                    status = statuses.get(path, 200)
                    body = b"ok\n"
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                             % (status, len(body), body if method != "HEAD" else b""))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
