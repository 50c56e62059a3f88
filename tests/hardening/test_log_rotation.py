"""Log rotation under a flood (issue "Hardening", item 7): a real writer process sends 1 M lines as fast as
it can to its O_APPEND log; no line is lost, the live file stays within 10 % of its limit, rotated copies
have the live file's mode, and ``tail``/``follow`` read across rotations."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.control import logfiles
from shipyard.primitives import process

LINES = 1_000_000
LIMIT = 10 * 1024 * 1024
KEEP = 40  # room for every copy of the flood, so that every line can be counted
WRITER = r"""
import os, sys
n = int(sys.argv[1])
pad = "x" * 70
w = os.write
for i in range(n):
    w(1, b"%08d %s\n" % (i, pad.encode()))
"""


SAMPLER = r"""
import os, sys, time
log, stop = sys.argv[1], sys.argv[2]
biggest = 0
while not os.path.exists(stop):
    try:
        biggest = max(biggest, os.stat(log).st_size)
    except FileNotFoundError:
        pass
    time.sleep(0.001)  # a core of its own would starve the rotator on a small machine
print(biggest)
"""


def _chain_bytes(log: Path) -> bytes:
    n = 1
    while logfiles.rotated(log, n).exists():
        n += 1
    return b"".join(logfiles.rotated(log, k).read_bytes() for k in range(n - 1, 0, -1)) + log.read_bytes()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("follow", [False, True], ids=["bound", "follow"])
def test_a_flood_loses_no_line_and_the_live_file_stays_near_its_limit(tmp_path: Path, follow: bool) -> None:
    """Bound: the rotator alone, as in the control plane. Follow: a ``follow`` reader in the same process
    too (it competes for the GIL, so the bound is not asserted there), which must see every line."""
    log = tmp_path / "logs" / "i.log"
    rotator = logfiles.LogRotator(LIMIT, KEEP)
    # The live file's size, as often as a process of its own can look (no GIL shared with the rotator).
    sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, str(log), str(tmp_path / "stop")],
                               stdout=subprocess.PIPE, text=True)

    async def scenario() -> tuple[float, list[str]]:
        handle = process.spawn([sys.executable, "-c", WRITER, str(LINES)], cwd=tmp_path, env=dict(os.environ),
                               log_path=log)
        rotator.start(lambda: [log])
        followed: list[str] = []

        async def follow_all() -> None:
            async for line in logfiles.follow(log, lines=LINES, poll_interval=0.01):
                followed.append(line)
                if line.startswith(f"{LINES - 1:08d}"):
                    return

        reader = asyncio.create_task(follow_all()) if follow else None
        start = time.monotonic()
        await process.wait_exit(handle.pid, handle.create_time)
        elapsed = time.monotonic() - start
        process.reap(handle.pid)
        if reader is not None:
            await asyncio.wait_for(reader, 60)
        rotator.stop(wait=10)
        return elapsed, followed

    try:
        elapsed, followed = asyncio.run(scenario())
    finally:
        (tmp_path / "stop").touch()
        out, _ = sampler.communicate(timeout=30)
    biggest = int(out)
    data = _chain_bytes(log)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    numbers = [int(line[:8]) for line in lines[:-1]]
    print(f"\n{LINES} lines in {elapsed:.2f}s, {len(data) / 1e6:.0f} MB, {rotator.rotations} rotations, "
          f"live file at most {biggest / 1e6:.2f} MB (limit {LIMIT / 1e6:.2f} MB)")
    assert numbers == list(range(LINES)), "lines lost or out of order"
    assert all(len(line) == 79 for line in lines[:-1]), "a line was torn"
    assert rotator.rotations >= 7
    # Copies have the live file's mode.
    live_mode = stat.S_IMODE(log.stat().st_mode)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in log.parent.glob("i.log.*")}
    assert modes == {live_mode}, (oct(live_mode), [oct(m) for m in modes])
    if not follow:
        assert biggest <= LIMIT * 1.1
        # `tail` right after a rotation still shows the last lines, read across the copy.
        logfiles.rotate(log, KEEP)
        assert [int(line[:8]) for line in logfiles.tail(log, 3)] == [LINES - 3, LINES - 2, LINES - 1]
        return
    # `follow` read every line across every rotation, in order.
    got = [int(line[:8]) for line in followed]
    assert got == list(range(LINES)), f"follow missed {len(set(range(LINES)) - set(got))} lines"


def test_rotated_copies_get_the_live_mode_whatever_the_umask(tmp_path: Path) -> None:
    log = tmp_path / "i.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o640)
    old = os.umask(0o022)
    try:
        os.write(fd, b"line\n" * 3000)  # more than one block: the collapsing path
        logfiles.rotate(log, 3)
        os.write(fd, b"small\n")
        logfiles.rotate(log, 3)  # less than one block: the copytruncate path
    finally:
        os.umask(old)
        os.close(fd)
    assert [oct(stat.S_IMODE(logfiles.rotated(log, n).stat().st_mode)) for n in (1, 2)] == ["0o640", "0o640"]
    assert logfiles.tail(log, 2) == ["line", "small"]


def test_pace_looks_sooner_and_rotates_earlier_when_the_file_grows_fast() -> None:
    pace = logfiles.RotationPace(max_bytes=10_000_000)
    assert pace.check(0, 0.0) == (False, 1.0)
    due, wait = pace.check(1_000_000, 0.1)  # 10 MB/s
    assert not due and wait == pytest.approx(0.45)
    due, wait = pace.check(9_400_000, 0.94)  # would pass the limit before a rotation is done
    assert due and wait < 0.6
    pace.rotated(0.2, 1_000_000, 1.14)  # a slow rotation: the next one starts earlier
    assert pace.latency == 0.2
    assert pace.check(7_500_000, 1.84) == (True, pytest.approx(0.5, abs=0.05))
    assert not pace.check(4_000_000, 1.9)[0]  # never below half the limit
    slow = logfiles.RotationPace(max_bytes=10_000_000)
    slow.check(0, 0.0)
    assert slow.check(100, 10.0) == (False, 1.0)
