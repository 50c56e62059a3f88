"""Access log: the hot path appends a tuple; a background task formats JSON lines and writes them in a
thread, rotating the file by size."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_MAX_PENDING = 200_000  # beyond this, records are dropped (and counted) rather than grow memory


def _s(b: bytes | None) -> str | None:
    return None if b is None else b.decode("latin-1")


def format_record(r: tuple[Any, ...]) -> str:
    ts, env, release, instance, method, path, status, dur, bin_, bout, ip, rid, trace, span = r
    return json.dumps({
        "ts": datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "env": env, "release": release, "instance": instance, "method": _s(method), "path": _s(path),
        "status": status, "duration_ms": round(dur * 1000.0, 3), "bytes_in": bin_, "bytes_out": bout,
        "client": _s(ip), "request_id": _s(rid), "trace_id": _s(trace), "span_id": _s(span),
    }, separators=(",", ":"))


class AccessLog:
    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024, keep: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = 0
        self._pending: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: tuple[Any, ...]) -> None:
        if len(self._pending) < _MAX_PENDING:
            self._pending.append(record)
        else:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        await asyncio.get_running_loop().run_in_executor(None, self._write, batch)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        text = "\n".join(format_record(r) for r in batch) + "\n"
        try:
            if self.path.exists() and self.path.stat().st_size + len(text) > self.max_bytes:
                self._rotate()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError:
            self.dropped += len(batch)  # a full disk must not take the router down

    def _rotate(self) -> None:
        for i in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
