"""The access log's writer: batches on the loop, size rotation, a file moved away by logrotate, a failing disk."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from shipyard.router.accesslog import BATCH_BYTES, AccessLog, AccessRecord


def _rec(i: int) -> AccessRecord:
    return (1_780_000_000.0 + i / 1000, "prod", "r1", "i1", b"GET", b"/p/%d" % i, 200, 0.001, 0, 10, b"127.0.0.1",
            b"a" * 16, b"b" * 32, b"c" * 16)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_lines_are_written_once_a_batch_has_gathered_without_waiting_for_the_timer(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.log")
    log.add(_rec(0))
    assert not (tmp_path / "access.log").exists()  # one line waits for the batch or the half-second timer
    n = 1
    while not (tmp_path / "access.log").exists():
        log.add(_rec(n))
        n += 1
        assert n < BATCH_BYTES  # a line is far longer than a byte
    assert 100 < n < BATCH_BYTES // 100  # the batch is 64 KiB of lines, not one line and not unbounded
    written = _lines(tmp_path / "access.log")
    assert [d["path"] for d in written] == [f"/p/{i}" for i in range(n)]
    assert oct((tmp_path / "access.log").stat().st_mode & 0o777) == oct(0o640 & ~_umask())


def test_rotation_by_size_keeps_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(path, max_bytes=4096, keep=50)
    for i in range(400):
        log.add(_rec(i))
        if i % 10 == 9:
            log.write_pending()
    asyncio.run(log.close())
    files = sorted(tmp_path.glob("access.log.*"), key=lambda p: -int(p.suffix[1:])) + [path]
    assert len(files) > 3
    assert all(f.stat().st_size <= 4096 for f in files)
    paths = [d["path"] for f in files for d in _lines(f)]
    assert paths == [f"/p/{i}" for i in range(400)]


def test_a_file_moved_away_is_followed_by_a_new_one_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(path)
    log.add(_rec(1))
    log.write_pending()
    os.rename(path, tmp_path / "access.log.old")  # what logrotate does, then it may signal nobody
    log.add(_rec(2))
    log.write_pending()
    assert [d["path"] for d in _lines(tmp_path / "access.log.old")] == ["/p/1"]
    assert [d["path"] for d in _lines(path)] == ["/p/2"]
    path.unlink()
    log.add(_rec(3))
    asyncio.run(log.close())
    assert [d["path"] for d in _lines(path)] == ["/p/3"]


def test_a_write_that_fails_drops_and_counts_the_batch_and_the_next_one_recovers(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = AccessLog(logs / "access.log")
    log.add(_rec(1))
    log.write_pending()
    (logs / "access.log").unlink()
    logs.rmdir()  # the directory is gone: open fails
    log.add(_rec(2))
    log.add(_rec(3))
    log.write_pending()  # no exception reaches the proxy
    assert log.dropped == 2
    logs.mkdir()
    log.add(_rec(4))
    asyncio.run(log.close())
    assert [d["path"] for d in _lines(logs / "access.log")] == ["/p/4"]


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old
