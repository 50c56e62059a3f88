"""The router's own code per request, without sockets: a keep-alive GET (as wrk sends it) and nginx's answer
through ``ClientConn`` / ``Exchange`` / ``UpstreamConn`` with in-memory transports, timed with process CPU
time; then the access log's formatting per line (older checkouts format later, in a thread; now
``AccessLog.add`` formats, so the line is part of the first figure). What the compiled hot path
(shipyard.router.native) and pure-Python changes save shows here without the kernel's and the event loop's share.

    python bench/router_hotpath.py [--requests 50000] [--no-access-log]
    PYTHONPATH=/other/checkout/src python bench/router_hotpath.py      # another checkout
    SHIPYARD_ROUTER_PURE=1 python bench/router_hotpath.py              # plain Python even when compiled
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from time import monotonic

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from shipyard.primitives.routerproto import parse  # noqa: E402
from shipyard.router import accesslog  # noqa: E402
from shipyard.router.env import EnvRuntime  # noqa: E402
from shipyard.router.proxy import ClientConn  # noqa: E402
from shipyard.router.server import Router  # noqa: E402
from shipyard.router.upstream import UpstreamConn  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 06:20:00 GMT\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n")


class MemoryTransport:
    """What the protocols call on a transport; writes are kept (and counted)."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: list[bytes]) -> None:
        self.out.extend(data)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        raise SystemExit("the router closed a connection the bench keeps alive")

    def is_closing(self) -> bool:
        return False

    def can_write_eof(self) -> bool:
        return True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...

    def get_extra_info(self, key: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if key == "peername" else default


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--no-access-log", action="store_true")
    args = ap.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    router = Router(loop, None if args.no_access_log else Path(tempfile.mkdtemp(prefix="hotpath-")))
    env = EnvRuntime(router, "bench")
    router.envs["bench"] = env
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop.run_until_complete(env.apply(parse({
        "env": "bench", "port": port, "bind": "127.0.0.1", "weights": {"r1": 100},
        "pools": [{"release": "r1", "role": "stable",
                   "instances": [{"id": "up", "host": "127.0.0.1", "port": 9, "ready": True}]}]})))
    inst = env.instances[("r1", "up")]
    up = UpstreamConn(inst)
    up_t, client_t = MemoryTransport(), MemoryTransport()
    up.connection_made(up_t)  # type: ignore[arg-type]
    up.sock = None  # no TCP_QUICKACK on a memory transport
    inst.put(up, monotonic())
    conn = ClientConn(env)
    conn.connection_made(client_t)  # type: ignore[arg-type]

    def run(n: int) -> None:
        for _ in range(n):
            conn.data_received(REQUEST)
            up.data_received(RESPONSE)

    run(1000)
    if not client_t.out[-1].endswith(b"ok\n") or len(inst.idle) != 1:
        raise SystemExit(f"the exchange did not complete: {client_t.out[-2:]!r}")
    runs = []
    for _ in range(5):
        client_t.out.clear()
        up_t.out.clear()
        if router.access_log is not None:
            router.access_log._pending.clear()
        t0 = time.process_time()
        run(args.requests)
        runs.append((time.process_time() - t0) / args.requests * 1e6)
    try:
        from shipyard.router import native

        build = "compiled" if native.state["native"] else "plain Python"
    except ImportError:  # a checkout from before the compiled hot path
        build = "plain Python"
    print(f"router code per request ({build}, access log {'off' if args.no_access_log else 'on'}): "
          f"{min(runs):.2f} µs (best of 5; runs {', '.join(f'{r:.2f}' for r in runs)})")
    if router.access_log is not None:
        records = router.access_log._pending[: args.requests]
        if records and isinstance(records[0], bytes):  # formatted by AccessLog.add: in the figure above
            print("access log line: formatted on the hot path (included above)")
            return
        format_line = getattr(accesslog, "format_line", accesslog.format_record)  # older checkouts: str lines
        t0 = time.process_time()
        for r in records:
            format_line(r)
        print(f"access log line: {(time.process_time() - t0) / len(records) * 1e6:.2f} µs each")


if __name__ == "__main__":
    main()
