"""Streaming: a large upload and a large download (default 1 GB each) through the router; prints router
RSS (sampled) and throughput. The upstream is tests/router/upstream_app.py (/sink and /download).

    python bench/router_streaming.py [--mb 1024]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from router_common import ROOT, free_port, rss_mb, start_router, wait_port


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    args = ap.parse_args()
    total = args.mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        up, px = free_port(), free_port()
        app = subprocess.Popen([sys.executable, str(ROOT / "tests/router/upstream_app.py"), str(up), "s1"],
                               stdout=subprocess.DEVNULL)
        wait_port(up)
        router = start_router(tmp, px, up, settings={"max_body_size": 0})
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(router.pid))
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        try:
            block = b"u" * (1024 * 1024)
            with socket.create_connection(("127.0.0.1", px), timeout=120) as s:
                t0 = time.monotonic()
                s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
                for _ in range(args.mb):
                    s.sendall(block)
                reply = s.recv(65536)
                up_s = time.monotonic() - t0
                assert b"200" in reply.split(b"\r\n", 1)[0], reply[:200]
                t0 = time.monotonic()
                s.sendall(b"GET /download?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % total)
                got = 0
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(65536)
                got = len(head.split(b"\r\n\r\n", 1)[1])
                while got < total:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
                down_s = time.monotonic() - t0
            print(f"upload   {args.mb} MB in {up_s:.1f} s ({args.mb / up_s:.0f} MB/s)")
            print(f"download {got / 2**20:.0f} MB in {down_s:.1f} s ({args.mb / down_s:.0f} MB/s)")
            print(f"router peak RSS {peak[0]:.1f} MB (goal < 100 MB)")
        finally:
            done.set()
            for p in (router, app):
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
