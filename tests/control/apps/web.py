"""A small HTTP app for supervisor tests; behaviour set through environment variables.

PORT                      port to serve on 127.0.0.1 (required)
CONTROL_DIR               a directory of marker files read on every request:
                            unhealthy → /health answers 500;  unready → /ready answers 503
INFO_FILE                 written at start: {"pid", "env"} as JSON
READY_AFTER               seconds after start before /ready answers 200 (default 0)
IGNORE_TERM=1             ignore SIGTERM (the leader and its helper child)
SPAWN_CHILD=1             start a helper process in the same process group; its pid goes to CHILD_PID_FILE
EXIT_AT_START=N           exit with code N before serving
LOG_LINES_PER_REQUEST=N   /spam writes N lines to stdout
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

START = time.monotonic()
CONTROL = Path(os.environ.get("CONTROL_DIR", "/nonexistent"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(500 if (CONTROL / "unhealthy").exists() else 200, "health")
        elif self.path == "/ready":
            ready = time.monotonic() - START >= float(os.environ.get("READY_AFTER", "0"))
            self.reply(200 if ready and not (CONTROL / "unready").exists() else 503, "ready")
        elif self.path.startswith("/exit/"):
            self.reply(200, "bye")
            sys.stdout.flush()
            os._exit(int(self.path.rsplit("/", 1)[1]))
        elif self.path == "/spam":
            n = int(os.environ.get("LOG_LINES_PER_REQUEST", "100"))
            for i in range(n):
                print(f"spam line {i} " + "x" * 80)
            sys.stdout.flush()
            self.reply(200, "spammed")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(200, f"hello from {os.getpid()}")

    def reply(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"request {format % args}", flush=True)


def main() -> None:
    if os.environ.get("EXIT_AT_START"):
        print("exiting at start", flush=True)
        sys.exit(int(os.environ["EXIT_AT_START"]))
    if os.environ.get("IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("SPAWN_CHILD") == "1":
        # The helper inherits SIG_IGN for SIGTERM when set above; stays in our process group.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(os.environ["CHILD_PID_FILE"]).write_text(str(child.pid))
    if os.environ.get("INFO_FILE"):
        Path(os.environ["INFO_FILE"]).write_text(json.dumps({"pid": os.getpid(), "env": dict(os.environ),
                                                             "cwd": os.getcwd()}))
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print(f"listening on {os.environ['PORT']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
