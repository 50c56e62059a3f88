"""`[logs] timestamps = true`: an instance's output goes through a detached stamper that puts the time
before each line, ends when the instance's output ends, and is never the control plane's child."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import psutil

from shipyard.control.logquery import filter_lines, line_time
from shipyard.primitives import process
from shipyard.primitives.logstamp import stamped

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ")


def test_stamped_chunks() -> None:
    t = 1_800_000_000.25
    out, start = stamped(b"one\ntwo\npart", True, t)
    assert out == b"2027-01-15T08:00:00.250Z one\n2027-01-15T08:00:00.250Z two\n2027-01-15T08:00:00.250Z part"
    assert start is False
    out, start = stamped(b"ial\nnext\n", start, t + 1)
    assert out == b"ial\n2027-01-15T08:00:01.250Z next\n" and start is True


def test_spawned_instance_output_is_stamped(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "prod" / "prod-r1-0.log"
    script = ("import sys, time\nprint('first', flush=True)\nsys.stderr.write('to stderr\\n'); sys.stderr.flush()\n"
              "time.sleep(0.6)\nsys.stdout.write('no newline at the end'); sys.stdout.flush()\n")
    before = time.time()
    handle = process.spawn([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ), log_path=log,
                           stamp=True)
    kids = {p.pid for p in psutil.Process().children(recursive=True)}
    assert handle.pid in kids
    stampers = [p for p in psutil.process_iter(["cmdline"]) if str(log) in " ".join(p.info["cmdline"] or [])]
    assert stampers and all(p.pid not in kids for p in stampers)  # detached: never our zombie
    deadline = time.monotonic() + 10
    while (not log.exists() or not log.read_text().endswith("no newline at the end")) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert [STAMP.sub("", x) for x in lines] == ["first", "to stderr", "no newline at the end"]
    assert all(STAMP.match(x) for x in lines)
    times = [line_time(x) for x in lines]
    assert all(t is not None and before - 1 <= t <= time.time() for t in times)
    assert times[2] - times[0] >= 0.4  # stamped when written, not when the file is read
    assert list(filter_lines(lines, since=times[2])) == lines[2:]
    # The stamper ends with the instance's output.
    for p in stampers:
        try:
            p.wait(10)
        except psutil.NoSuchProcess:
            pass
    process.reap_exited()
