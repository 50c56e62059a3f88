"""An instance that writes each response's head and body in two writes, as Python's http.server does.

    python splitwrite_app.py PORT [SERVICE_MS]

Nagle is left on (as in http.server and Flask's dev server), so on a keep-alive connection the body
waits for the peer's ACK of the head: the 40 ms delayed-ACK stall the router hides (TCP_QUICKACK).
Every request sleeps SERVICE_MS (default 0) and answers ``ok`` with Content-Length.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_S = 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if SERVICE_S:
            time.sleep(SERVICE_S)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()  # first write: the head
        self.wfile.write(body)  # second write: the body

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients (wrk) hang up mid-request when they stop


if __name__ == "__main__":
    if len(sys.argv) > 2:
        SERVICE_S = float(sys.argv[2]) / 1000.0
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
