#!/usr/bin/env python3
"""Example service for shipyard's demo and tests: stdlib only, one process, started with PORT set.

Every response carries its version (env APP_VERSION, else a VERSION file next to this file, else
"dev") and release (env SHIPYARD_RELEASE) as X-App-Version / X-Shipyard-Release headers, and JSON
bodies repeat them.

Endpoints
  GET  /             {"version", "release", "greeting": $GREETING, "instance"}
  GET  /health       liveness: 200 {"status": "ok", "inflight": n}  (500 with FAULT_HEALTH_FAIL)
  GET  /ready        readiness: 503 until the slow start is over (and once stopping), then 200
  GET  /slow?ms=N    answers after N ms (at most 60 000)
  POST /echo         answers with the request body

Fault knobs (env), applied to /, /slow and /echo (never to the probes):
  FAULT_ERROR_RATE=0.2      that fraction of requests answer 500 ("20%" works too)
  FAULT_LATENCY_MS=100      extra latency on each request
  FAULT_SLOW_START_S=5      /ready answers 503 for the first 5 s
  FAULT_CRASH_AT_START=1    exit 1 immediately
  FAULT_CRASH_AFTER_S=2     serve normally, then exit 1 after 2 s (a crash loop under the supervisor)
  FAULT_HEALTH_FAIL=1       /health answers 500 (FAULT_HEALTH_FAIL=503: answers 503)
  FAULT_HOLD_MIB=150        allocate (and keep) 150 MiB at start: a release that uses more memory

SIGTERM (or SIGINT): stop accepting, let requests in flight finish (up to STOP_GRACE_S, default 30),
exit 0. HTTP/1.1 keep-alive, every response has Content-Length, no per-request logging.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

_TRUE = {"1", "true", "yes", "on"}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _header_safe(value: str) -> str:
    return "".join(ch for ch in value if 32 <= ord(ch) < 127)


def read_version() -> str:
    if os.environ.get("APP_VERSION"):
        return os.environ["APP_VERSION"]
    try:
        return Path(__file__).with_name("VERSION").read_text(encoding="utf-8").strip() or "dev"
    except OSError:
        return "dev"


def _fraction(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return 0.0
    value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {raw}")
    return value


def _number(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    value = float(raw) if raw else 0.0
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw}")
    return value


class State:
    """What handlers share: configuration read once at start, and the in-flight count."""

    def __init__(self, port: int) -> None:
        self.version = read_version()
        self.release = os.environ.get("SHIPYARD_RELEASE", "")
        self.greeting = os.environ.get("GREETING", "hello")
        self.instance = os.environ.get("SHIPYARD_INSTANCE") or f"{port}/{os.getpid()}"
        self.error_rate = _fraction("FAULT_ERROR_RATE")
        self.latency_s = _number("FAULT_LATENCY_MS") / 1000
        self.ready_at = time.monotonic() + _number("FAULT_SLOW_START_S")
        fail = os.environ.get("FAULT_HEALTH_FAIL", "").strip().lower()
        # 1/true: answer 500; a status code (503): answer that.
        self.health_fail = int(fail) if fail.isdigit() and len(fail) == 3 else (500 if fail in _TRUE else 0)
        self.stopping = False
        self.inflight = 0
        self._idle = threading.Condition()
        self.base_headers = (
            f"X-App-Version: {_header_safe(self.version)}\r\nX-Shipyard-Release: {_header_safe(self.release)}\r\n"
        )
        # "/" never changes, so its body is rendered once.
        self.root_body = self.json(greeting=self.greeting, instance=self.instance)

    def json(self, **fields: object) -> bytes:
        return json.dumps({"version": self.version, "release": self.release, **fields}).encode() + b"\n"

    def begin(self) -> None:
        with self._idle:
            self.inflight += 1

    def end(self) -> None:
        with self._idle:
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.inflight == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "shipyard-example"
    disable_nagle_algorithm = True
    state: State  # set on the class in main()

    def log_message(self, format: str, *args: object) -> None:
        pass  # per-request logging would cost more than the request

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        st = self.state
        st.begin()
        try:
            try:
                body = self._read_body()
            except ValueError as exc:
                self.close_connection = True
                self._send(400, st.json(error=str(exc)))
                return
            path, _, query = self.path.partition("?")
            if path == "/health":
                if st.health_fail:
                    self._send(st.health_fail, st.json(status="failing", reason="FAULT_HEALTH_FAIL"))
                else:
                    self._send(200, st.json(status="ok", inflight=st.inflight - 1))
            elif path == "/ready":
                ready = not st.stopping and time.monotonic() >= st.ready_at
                self._send(200 if ready else 503, st.json(ready=ready))
            elif path in ("/", "/slow", "/echo"):
                self._app(path, query, body)
            else:
                self._send(404, st.json(error=f"no route for {path}"))
        finally:
            st.end()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ValueError("bad chunk size in chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("bad Content-Length") from None
        return self.rfile.read(length) if length > 0 else b""

    def _app(self, path: str, query: str, body: bytes) -> None:
        st = self.state
        if st.latency_s:
            time.sleep(st.latency_s)
        if st.error_rate and random.random() < st.error_rate:
            self._send(500, st.json(error="injected fault (FAULT_ERROR_RATE)"))
        elif path == "/":
            self._send(200, st.root_body)
        elif path == "/slow":
            try:
                ms = min(max(int(parse_qs(query).get("ms", ["0"])[0]), 0), 60_000)
            except ValueError:
                self._send(400, st.json(error="ms must be an integer"))
                return
            time.sleep(ms / 1000)
            self._send(200, st.json(slept_ms=ms))
        elif self.command != "POST":
            self._send(405, st.json(error="POST /echo"))
        else:
            self._send(200, body, self.headers.get("Content-Type", "application/octet-stream"))

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        if self.state.stopping:
            self.close_connection = True
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: {_header_safe(content_type)}\r\nContent-Length: {len(body)}\r\n"
            f"{self.state.base_headers}{'Connection: close' + chr(13) + chr(10) if self.close_connection else ''}\r\n"
        )
        # One write per response: headers and body in a single segment.
        self.wfile.write(head.encode("latin-1") + body)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up exit
    request_queue_size = 1024

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn): a DNS round-trip nobody needs.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


_HELD: list[bytearray] = []


def main() -> int:
    if os.environ.get("FAULT_CRASH_AT_START", "").strip().lower() in _TRUE:
        print("FAULT_CRASH_AT_START is set: exiting 1", file=sys.stderr, flush=True)
        return 1
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    try:
        state = State(port)
    except ValueError as exc:
        print(f"bad configuration: {exc}", file=sys.stderr, flush=True)
        return 2
    Handler.state = state
    _HELD.append(bytearray(b"\x01") * int(_number("FAULT_HOLD_MIB") * 1024 * 1024))  # repetition touches every page
    server = Server((host, port), Handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    print(f"example app {state.version} (release {state.release or '-'}) listening on http://{host}:{port}",
          flush=True)
    crash_after = _number("FAULT_CRASH_AFTER_S")
    started = time.monotonic()
    while not stop.wait(0.05 if crash_after else 1.0):
        if crash_after and time.monotonic() - started >= crash_after:
            print("FAULT_CRASH_AFTER_S: crashing", file=sys.stderr, flush=True)
            os._exit(1)
    state.stopping = True
    server.shutdown()  # the accept loop ends...
    server.server_close()  # ...and the listening socket closes: new connections are refused
    grace = float(os.environ.get("STOP_GRACE_S", "30"))
    drained = state.wait_idle(grace)
    print(f"stopped ({'drained' if drained else f'{state.inflight} requests cut after {grace:g}s'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
