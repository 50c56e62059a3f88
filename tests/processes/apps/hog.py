"""A small HTTP app for the resource-limit tests; behaviour set through environment variables.

PORT            port to serve on 127.0.0.1 (/health answers 200)
HOG_MIB=N       once ready, allocate (and touch) N MiB in 10 MiB steps, then keep it
HOG_ONCE=PATH   allocate only when PATH does not exist yet (it is made first): the restart stays small
BUSY=1          spin a CPU-bound loop beside the server
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

held: list[bytearray] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def hog(mib: int) -> None:
    time.sleep(0.3)
    for _ in range(0, mib, 10):
        held.append(bytearray(b"\x01") * (10 * 1024 * 1024))  # repetition writes every page
        time.sleep(0.01)
    print(f"holding {mib} MiB", flush=True)


def spin() -> None:
    n = 0
    while True:
        n += 1


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    mib = int(os.environ.get("HOG_MIB", "0"))
    once = os.environ.get("HOG_ONCE")
    if mib and once:
        if Path(once).exists():
            mib = 0
        else:
            Path(once).touch()
    if mib:
        threading.Thread(target=hog, args=(mib,), daemon=True).start()
    if os.environ.get("BUSY") == "1":
        threading.Thread(target=spin, daemon=True).start()
    print(f"serving on {os.environ['PORT']} (pid {os.getpid()})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
