"""Steady HTTP traffic for demos and tests: counts every failure and the versions that answered.

Runs an asyncio loop in a background thread; keep-alive connections on loopback send requests at a
fixed rate. A request fails when the connection errors or the status is 5xx. Used by ``make demo``,
the zero-downtime tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counts:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failed_versions: Counter[str] = field(default_factory=Counter)  # who answered a 5xx ("?": nobody did)
    first_seen: dict[str, float] = field(default_factory=dict)  # version → monotonic time of its first answer
    last_seen: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        vs = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
        return f"{self.sent} requests, {self.failed} failed ({vs})"


class Traffic:
    def __init__(self, port: int, rate: float = 100.0, connections: int = 8, path: str = "/",
                 timeout: float = 10.0) -> None:
        self.port, self.rate, self.connections, self.path, self.timeout = port, rate, connections, path, timeout
        self.counts = Counts()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    def stop(self) -> Counts:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.timeout + 5)
        return self.counts

    async def _main(self) -> None:
        per_conn = self.rate / self.connections
        await asyncio.gather(*(self._conn_loop(per_conn, i) for i in range(self.connections)))

    async def _conn_loop(self, rate: float, i: int) -> None:
        interval = 1.0 / rate
        next_at = time.monotonic() + interval * i / self.connections
        reader = writer = None
        req = (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n").encode()
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.port), self.timeout)
                assert reader is not None
                writer.write(req)
                status, body, close = await asyncio.wait_for(_read_response(reader), self.timeout)
                self._record(status, body)
                if close:
                    writer.close()
                    reader = writer = None
            except Exception as exc:  # every kind of failure counts
                with self._lock:
                    self.counts.sent += 1
                    self.counts.failed += 1
                    self.counts.errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    def _record(self, status: int, body: bytes) -> None:
        try:
            version = str(json.loads(body).get("version"))
        except (ValueError, AttributeError):
            version = "?"
        now = time.monotonic()
        with self._lock:
            c = self.counts
            c.sent += 1
            c.statuses[status] += 1
            c.first_seen.setdefault(version, now)
            c.last_seen[version] = now
            if status >= 500:
                c.failed += 1
                c.failed_versions[version] += 1
                return
            c.ok += 1
            c.versions[version] += 1


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
        return status, body, True
    return status, body, headers.get("connection", "").lower() == "close"
