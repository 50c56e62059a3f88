"""`shipyard logs`: --lines counts over the environment (newest N across instances, interleaved by the
times the lines carry); --timestamps shows those times and the control plane's instance events."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime

from shipyard.cli.logmerge import Event, line_time, newest, stamp, timed, with_events

from .conftest import Project

BOOT = '''import datetime as _dt, os as _os
print(f"{_dt.datetime.now().astimezone().isoformat()} boot {_os.environ['SHIPYARD_INSTANCE']}", flush=True)
'''


def test_line_times() -> None:
    t = datetime(2026, 12, 1, 20, 0, 1, tzinfo=UTC).timestamp()
    assert line_time("2026-12-01T20:00:01Z started") == t
    assert line_time("2026-12-01T20:00:01.250+00:00 x") == t + 0.25
    assert line_time("[2026-12-01 21:00:01 +0100] [7] [INFO] Booting worker") == t  # gunicorn
    assert line_time('127.0.0.1 - - [01/Dec/2026:20:00:01 +0000] "GET / HTTP/1.1" 200') == t
    local = time.mktime((2026, 12, 1, 20, 0, 1, 0, 0, -1))
    assert line_time("2026-12-01 20:00:01,000 INFO app") == local  # Python's logging: local time
    assert line_time('127.0.0.1 - - [01/Dec/2026 20:00:01] "GET / HTTP/1.1" 200 -') == local  # http.server
    assert line_time("INFO:     Uvicorn running") is None
    assert line_time("2026-13-01 20:00:01 not a time") is None


def test_newest_lines_across_files_interleaved_by_time() -> None:
    a = timed("a", ["2026-12-01T20:00:01Z a1", "  continued", "2026-12-01T20:00:03Z a3"], anchor=0, file=0)
    b = timed("b", ["no time yet", "2026-12-01T20:00:02Z b2", "2026-12-01T20:00:04Z b4"], anchor=0, file=1)
    assert [x.source for x in a] == ["line", "inherited", "line"]
    assert b[0].source is None and b[0].order == b[1].order  # sorts with the first timed line below it
    assert [x.text for x in newest([a, b], 10)] == ["2026-12-01T20:00:01Z a1", "  continued", "no time yet",
                                                    "2026-12-01T20:00:02Z b2", "2026-12-01T20:00:03Z a3",
                                                    "2026-12-01T20:00:04Z b4"]
    assert [x.text[-2:] for x in newest([a, b], 2)] == ["a3", "b4"]
    untimed = timed("c", ["x", "y"], anchor=5.0, file=2)
    assert [x.order for x in untimed] == [5.0, 5.0] and untimed[0].time is None
    t2 = a[2].order
    evs = [Event("a", "instance.restarted", "restarted", t2 - 0.5), Event("a", "instance.started", "early", 0.0)]
    cut = with_events(newest([a, b], 2), evs, whole=False)
    assert [x.message if isinstance(x, Event) else x.text[-2:] for x in cut] == ["a3", "b4"]
    evs[0] = Event("a", "instance.restarted", "restarted", t2 + 0.5)
    cut = with_events(newest([a, b], 2), evs, whole=False)
    assert [x.message if isinstance(x, Event) else x.text[-2:] for x in cut] == ["a3", "restarted", "b4"]
    whole = with_events(newest([a, b], 10), evs, whole=True)
    assert isinstance(whole[0], Event) and whole[0].message == "early" and len(whole) == 8
    assert len(stamp(None)) == len(stamp(t2)) == 23


def test_lines_count_over_the_environment_and_timestamps(running: Project) -> None:
    app = (running.dir / "app.py").read_text()
    head = "from __future__ import annotations\n"
    running.commit("v2", files={"app.py": app.replace(head, head + BOOT, 1)})
    running.json("deploy", "--env", "staging")
    ids = [i["id"] for i in running.json("status", "--env", "staging")["instances"]]  # type: ignore[index]
    assert len(ids) == 3
    every = [json.loads(x) for x in running.ok("logs", "--env", "staging", "--json").stdout.splitlines()]
    assert len(every) == 6 and {r["instance"] for r in every} == set(ids), every  # boot + listening each
    two = [json.loads(x) for x in running.ok("logs", "--env", "staging", "-n", "2", "--json").stdout.splitlines()]
    assert two == every[-2:], (two, every)
    # Interleaved by time: every instance's boot line comes in the order the instances booted.
    boots = [r for r in every if " boot " in r["line"]]
    assert [line_time(r["line"]) for r in boots] == sorted(line_time(r["line"]) for r in boots)

    stamped = [json.loads(x) for x in
               running.ok("logs", "--env", "staging", "--timestamps", "--json").stdout.splitlines()]
    lines = [r for r in stamped if "line" in r]
    events = [r for r in stamped if "event" in r]
    assert [r["line"] for r in lines] == [r["line"] for r in every]
    assert {r["time_source"] for r in lines} == {"line", "inherited"}, lines
    assert {(r["instance"], r["event"]) for r in events} >= {(i, "instance.started") for i in ids}, events
    times = [r["time"] for r in stamped]
    assert times == sorted(times), stamped
    human = running.ok("logs", "--env", "staging", "-t").stdout.splitlines()
    assert any(" ── instance " in x and " started" in x for x in human), human
    assert all(x[:4].isdigit() for x in human), human  # every line starts with its time

    # The control plane down: the CLI reads the files itself (the same reading code, control/logreading.py).
    pid = running.control_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    down = running.cli("logs", "--env", "staging", "--json")
    assert down.returncode == 0 and "control plane is not running" in down.stderr, down.stderr
    assert [json.loads(x)["line"] for x in down.stdout.splitlines()] == [r["line"] for r in every]
