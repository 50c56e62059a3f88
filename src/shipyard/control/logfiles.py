"""Instance log files: size rotation with copytruncate, ``tail`` and ``follow`` for ``shipyard logs``.

Instances hold their log file open with ``O_APPEND`` and never reopen it, so rotation copies the file
to ``.1`` (shifting ``.1`` → ``.2`` … keeping ``keep``) and truncates it in place; the child's next
write lands at the new end. Lines written between the copy and the truncate are lost — the usual
copytruncate trade-off, kept small by truncating right after the copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncGenerator
from pathlib import Path

from shipyard.primitives.clock import Clock, SystemClock

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate(path: Path, keep: int = DEFAULT_KEEP) -> None:
    """Copy ``path`` to ``path.1`` (older copies shift up, beyond ``keep`` deleted) and truncate it."""
    if keep < 1:
        os.truncate(path, 0)
        return
    with contextlib.suppress(FileNotFoundError):
        rotated(path, keep).unlink()
    for n in range(keep - 1, 0, -1):
        src = rotated(path, n)
        if src.exists():
            src.replace(rotated(path, n + 1))
    shutil.copyfile(path, rotated(path, 1))
    os.truncate(path, 0)


def rotate_if_needed(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> bool:
    """Rotate when the file has grown past ``max_bytes``; True when it did."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    rotate(path, keep)
    return True


def tail(path: Path, n: int = 100) -> list[str]:
    """The last ``n`` lines (without newlines) of ``path``, continued from its rotated copies when the
    current file holds fewer; reads only the end of big files."""
    out = _tail_one(path, n)
    k = 1
    while len(out) < n and rotated(path, k).exists():
        out = _tail_one(rotated(path, k), n - len(out)) + out
        k += 1
    return out


def _tail_one(path: Path, n: int) -> list[str]:
    if n <= 0:
        return []
    try:
        with open(path, "rb") as f:
            pos = f.seek(0, os.SEEK_END)
            data = b""
            while pos > 0 and data.count(b"\n") <= n:
                step = min(64 * 1024, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]


async def follow(path: Path, *, lines: int = 10, clock: Clock | None = None,
                 poll_interval: float = 0.25) -> AsyncGenerator[str, None]:
    """Yield the last ``lines`` lines, then every new line as it is written (like ``tail -F``).

    Survives copytruncate rotation (the file shrinks: read again from the start) and the file not
    existing yet. Polls through ``clock``; runs until the consumer stops iterating.
    """
    clock = clock or SystemClock()
    pos = _size(path)
    last = tail(path, lines)
    copy = _identity(rotated(path, 1))
    for line in last:
        yield line
    pending = b""
    while True:
        size = _size(path)
        now_copy = _identity(rotated(path, 1))
        # Rotated: the file shrank, or a new .1 appeared (the file may already have regrown past
        # where we were, which the size alone would not show).
        if size < pos or now_copy != copy:
            pos = 0
            pending = b""
            copy = now_copy
        if size > pos:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read(size - pos)
            pos += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", "replace")
            continue
        await clock.sleep(poll_interval)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns
