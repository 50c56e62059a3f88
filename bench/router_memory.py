"""Router RSS with N idle keep-alive client connections (default 10,000), each having made one request.

    python bench/router_memory.py [--connections 10000]
"""

from __future__ import annotations

import argparse
import resource
import socket
import tempfile
from pathlib import Path

from router_common import free_port, nginx, rss_mb, start_router, wait_port


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10_000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections * 2 + 100)), hard))
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px = free_port(), free_port()
        procs = [nginx(tmp, "upstream", up, 'server { listen 127.0.0.1:PORT; location / { return 200 "ok\\n"; } }')]
        wait_port(up)
        router = start_router(tmp, px, up, settings={"idle_timeout": "10m"})
        procs.append(router)
        base = rss_mb(router.pid)
        socks = []
        try:
            unread: list[socket.socket] = []
            for _ in range(args.connections):
                s = socket.create_connection(("127.0.0.1", px), timeout=30)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
                unread.append(s)
                if len(unread) == 500:
                    for q in unread:
                        q.recv(4096)
                    unread.clear()
            for q in unread:
                q.recv(4096)
            print(f"router RSS: {base:.1f} MB at start, {rss_mb(router.pid):.1f} MB with {len(socks)} idle "
                  f"keep-alive connections (goal ≤ 100 MB)")
        finally:
            for s in socks:
                s.close()
            for p in procs:
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
