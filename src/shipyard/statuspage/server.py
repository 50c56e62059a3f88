"""A small static server for the status page's files: a fixed set of paths, no directory listing, no
login, read from disk on every request (the control plane replaces them atomically)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROUTES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/api/v2/summary.json": ("api/v2/summary.json", "application/json"),
    "/api/v2/status.json": ("api/v2/status.json", "application/json"),
    "/history.atom": ("history.atom", "application/atom+xml; charset=utf-8"),
}
_HEADERS = (("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"),
            ("Referrer-Policy", "no-referrer"))
_WAITING = b"<!doctype html><title>Status</title><p>The status page is being prepared.</p>\n"


def handler_for(root: Path) -> type[BaseHTTPRequestHandler]:
    class StatusFiles(BaseHTTPRequestHandler):
        server_version = "shipyard-status"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            route = ROUTES.get(urlsplit(self.path).path)
            if route is None:
                self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
                return
            name, ctype = route
            try:
                body = (root / name).read_bytes()
            except FileNotFoundError:
                self._send(503, _WAITING, "text/html; charset=utf-8", head, retry=True)
                return
            self._send(200, body, ctype, head)

        def _send(self, code: int, body: bytes, ctype: str, head: bool, retry: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in _HEADERS:
                self.send_header(k, v)
            if retry:
                self.send_header("Retry-After", "5")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
            return  # the page is public and busy; requests are not logged

    return StatusFiles


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="shipyard-statuspage")
    ap.add_argument("--dir", required=True, help="the files the control plane writes")
    ap.add_argument("--listen", required=True, help="host:port (port 0: any free one)")
    ap.add_argument("--ready-file", help="written with {pid, port} once listening")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        server = ThreadingHTTPServer((host.strip("[]"), int(port)), handler_for(Path(args.dir)))
    except (OSError, ValueError) as exc:
        print(f"error: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    server.daemon_threads = True
    if args.ready_file:
        tmp = Path(args.ready_file).with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "port": server.server_address[1], "listen": args.listen}))
        os.replace(tmp, args.ready_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
