"""Access log: the hot path formats its JSON line (bytes) and appends it; the lines are written in 64 KiB
batches on the loop (and every half second), rotating the file by size.

Formatted at once rather than kept as tuples: a tuple waiting half a second is a tracked object the cyclic
GC walks (half a million of them a minute under load: ~0.5 µs of collections per request)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Final

_MAX_PENDING: Final = 200_000  # beyond this, records are dropped (and counted) rather than grow memory
BATCH_BYTES: Final = 64 * 1024  # written when this much has gathered


# (monotonic-derived wall time, env, release, instance, method, path, status, duration s, bytes in, bytes out,
#  client ip, request id, trace id, span id) — a tuple, so the hot path allocates once per request.
AccessRecord = tuple[float, str, str | None, str | None, bytes, bytes, int, float, int, int, bytes, bytes | None,
                     bytes | None, bytes | None]
_Who = tuple[str, str | None, str | None, bytes, bytes]

_enc = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses for strings


def _js(v: str | bytes | None) -> str:
    if v is None:
        return "null"
    return str(_enc(v.decode("latin-1") if isinstance(v, bytes) else v))


# A path made only of printable ASCII other than '"' and '\\' is its own JSON string body (the common case).
_PLAIN: Final = re.compile(rb'[ !#-\[\]-~]*')
_LINE: Final = (b'{"ts":"%s.%03dZ",%s,"path":"%s","status":%d,"duration_ms":%.3f,"bytes_in":%d,"bytes_out":%d,'
         b'"request_id":"%s","trace_id":"%s","span_id":"%s"}')


def format_line(r: AccessRecord, _ts: dict[int, bytes] = {}, _who: dict[_Who, bytes] = {}) -> bytes:  # noqa: B006
    """One JSON line (bytes, ASCII). One ``%`` for the common record: it runs in the router's process, so
    every microsecond here competes with the proxy for the interpreter. Request ids, trace and span ids
    reach a record only after their own format checks (tracing.py: hex, or ``[A-Za-z0-9._:-]``), so they
    need no escaping; the path is escaped unless it is plain; fragments from our own table are escaped
    once and cached."""
    ts, env, release, instance, method, path, status, dur, bin_, bout, ip, rid, trace, span = r
    sec = int(ts)
    prefix = _ts.get(sec)
    if prefix is None:
        if len(_ts) > 4:
            _ts.clear()
        prefix = _ts[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
    key = (env, release, instance, method, ip)
    who = _who.get(key)
    if who is None:
        if len(_who) > 10_000:
            _who.clear()
        who = _who[key] = (f'"env":{_js(env)},"release":{_js(release)},"instance":{_js(instance)},'
                           f'"method":{_js(method)},"client":{_js(ip)}').encode()
    if rid is not None and trace is not None and span is not None and _PLAIN.fullmatch(path):
        return _LINE % (prefix, int((ts - sec) * 1000), who, path, status, dur * 1000.0, bin_, bout, rid, trace,
                        span)
    return (f'{{"ts":"{prefix.decode()}.{int((ts - sec) * 1000):03d}Z",{who.decode()},"path":{_js(path)},'
            f'"status":{status},"duration_ms":{dur * 1000.0:.3f},"bytes_in":{bin_},"bytes_out":{bout},'
            f'"request_id":{_js(rid)},"trace_id":{_js(trace)},"span_id":{_js(span)}}}').encode()


def format_record(r: AccessRecord) -> str:
    """One JSON line as text (what ``format_line`` writes)."""
    return format_line(r).decode("ascii")


class AccessLog:
    """Lines are written on the loop, synchronously, whenever ``BATCH_BYTES`` have gathered (and every half
    second for the rest), as nginx writes its log. A thread per batch was the old way: handing batches to
    an executor made two threads contend for the GIL, which cost the proxy ~1 µs per request; a 64 KiB
    write into the page cache takes tens of µs, once per ~200 requests. The file is kept open; each batch
    compares its inode with the path's (logrotate renamed or removed it: reopen) and rotates by the size
    tracked while writing."""

    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024, keep: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = 0
        self._pending: list[bytes] = []  # formatted lines
        self._pending_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._fd = -1
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: AccessRecord) -> None:
        line = format_line(record)
        pending = self._pending
        if len(pending) < _MAX_PENDING:
            pending.append(line)
            self._pending_bytes += len(line) + 1
            if self._pending_bytes >= BATCH_BYTES:
                self.write_pending()
        else:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.write_pending()

    async def flush(self) -> None:
        self.write_pending()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.write_pending()
        self._close_fd()

    def write_pending(self) -> None:
        batch = self._pending
        if not batch:
            return
        self._pending = []
        self._pending_bytes = 0
        text = b"\n".join(batch) + b"\n"
        try:
            if self._fd < 0 or self._moved():
                self._open()
            if self._size + len(text) > self.max_bytes and self._size > 0:
                self._rotate()
            view = memoryview(text)
            while view:  # a regular file takes it all at once; a short write only on a full disk
                n = os.write(self._fd, view)
                self._size += n
                view = view[n:]
        except OSError:
            self.dropped += len(batch)  # a full disk must not take the router down
            self._close_fd()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _moved(self) -> bool:
        """The file was renamed or removed by someone else (logrotate): write to a new one at the path."""
        try:
            same = os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            same = False
        if not same:
            self._close_fd()
        return not same

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def _rotate(self) -> None:
        self._close_fd()
        for i in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()
