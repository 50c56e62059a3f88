"""Log files: copytruncate rotation under a live O_APPEND writer, tail across copies, follow."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shipyard.control import logfiles


def _write(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_rotate_keeps_n_copies_newest_first(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    for gen in range(5):
        _write(log, f"gen {gen}\n")
        logfiles.rotate(log, keep=3)
    assert log.read_text() == ""
    assert [logfiles.rotated(log, n).read_text() for n in (1, 2, 3)] == ["gen 4\n", "gen 3\n", "gen 2\n"]
    assert not logfiles.rotated(log, 4).exists()


def test_rotate_if_needed_only_past_the_limit(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    assert not logfiles.rotate_if_needed(log, max_bytes=10)  # missing file
    _write(log, "x" * 10)
    assert not logfiles.rotate_if_needed(log, max_bytes=10)
    _write(log, "y")
    assert logfiles.rotate_if_needed(log, max_bytes=10)
    assert logfiles.rotated(log, 1).read_text() == "x" * 10 + "y"


def test_an_o_append_writer_continues_at_the_start_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, b"a" * 1000 + b"\n")
        logfiles.rotate(log, keep=1)
        os.write(fd, b"after\n")
    finally:
        os.close(fd)
    assert log.read_bytes() == b"after\n"  # no hole of NULs up to the old offset


def test_tail_reads_the_end_and_continues_into_rotated_copies(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    _write(log, "".join(f"old {i}\n" for i in range(5)))
    logfiles.rotate(log)
    _write(log, "new 0\nnew 1\n")
    assert logfiles.tail(log, 3) == ["old 4", "new 0", "new 1"]
    assert logfiles.tail(log, 1) == ["new 1"]
    assert logfiles.tail(log, 0) == []
    assert logfiles.tail(tmp_path / "missing.log", 5) == []
    big = tmp_path / "big.log"
    _write(big, "".join(f"line {i} {'z' * 100}\n" for i in range(5000)))
    assert [line.split()[1] for line in logfiles.tail(big, 3)] == ["4997", "4998", "4999"]


def test_follow_yields_new_lines_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    _write(log, "one\ntwo\n")

    async def scenario() -> list[str]:
        seen: list[str] = []
        gen = logfiles.follow(log, lines=1, poll_interval=0.01)
        seen.append(await anext(gen))
        _write(log, "three\nfour")  # "four" is incomplete until its newline
        seen.append(await anext(gen))
        _write(log, "\n")
        seen.append(await anext(gen))
        logfiles.rotate(log)
        _write(log, "five\n")
        seen.append(await anext(gen))
        await gen.aclose()
        return seen

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == ["two", "three", "four", "five"]


def test_follow_notices_rotation_even_when_the_file_regrew(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    _write(log, "a\n")

    async def scenario() -> str:
        gen = logfiles.follow(log, lines=0, poll_interval=0.01)
        nxt = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(0.05)  # let it settle at the end of the file
        logfiles.rotate(log)
        _write(log, "a much longer line than before\n")
        line = await nxt
        await gen.aclose()
        return line

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == "a much longer line than before"
