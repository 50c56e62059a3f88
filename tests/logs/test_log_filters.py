"""`shipyard logs --grep/--since/--until/--trace/--router` over real log files (instance output with its
rotated copies, the router's access log written by the router's own formatter, the control plane's JSON
log), and the pure filter under it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.control import logsetup
from shipyard.control.logquery import filter_lines, line_time, parse_since
from shipyard.errors import BadInput
from shipyard.router.accesslog import format_record

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "00f067aa0ba902b700f067aa0ba902b7"


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def access(t: float, env: str, path: str, status: int, trace: str | None) -> str:
    return format_record((t, env, "r1", "i0", b"GET", path.encode(), status, 0.012, 0, 10, b"127.0.0.1",
                          b"req-1", trace.encode() if trace else None, None))


def test_filter_lines_by_text_time_and_trace() -> None:
    now = 1_800_000_000.0
    lines = [f"{iso(now - 3600)} old start",
             "  continuation of the old line",
             f"{iso(now - 300)} GET /checkout failed",
             "Traceback (most recent call last):",
             f"{iso(now - 60)} GET /health ok",
             access(now - 30, "prod", "/checkout", 500, TRACE),
             access(now - 20, "prod", "/checkout", 200, OTHER),
             f"{iso(now - 10)} handled traceparent 00-{TRACE}-00f067aa0ba902b7-01"]
    assert list(filter_lines(lines, grep="checkout")) == [lines[2], lines[5], lines[6]]
    assert list(filter_lines(lines, grep="re:GET /(health|checkout) ")) == [lines[2], lines[4]]
    # The traceback line inherits the time of the line above it.
    assert list(filter_lines(lines, since=now - 600)) == lines[2:]
    assert list(filter_lines(lines, since=now - 600, until=now - 100)) == lines[2:4]
    assert list(filter_lines(lines, trace=TRACE.upper())) == [lines[5], lines[7]]
    assert list(filter_lines(lines, grep="checkout", trace=TRACE)) == [lines[5]]
    assert line_time(lines[5]) == pytest.approx(now - 30, abs=0.001)
    assert parse_since("10m", now) == now - 600
    assert parse_since("2026-12-01T20:00:00Z", now) == 1796155200.0
    for bad in ("yesterday", "-5m"):
        with pytest.raises(BadInput, match="--since"):
            parse_since(bad, now)
    with pytest.raises(BadInput, match="--trace"):
        list(filter_lines(lines, trace="xyz"))
    with pytest.raises(BadInput, match="--grep"):
        list(filter_lines(lines, grep="re:(unclosed"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shipyard.toml").write_text(
        '[app]\nname = "svc"\nrun = "python3 app.py"\n[app.health]\npath = "/health"\n'
        "[environments.staging]\nport = 8201\n[environments.prod]\nport = 8301\n")
    logs = tmp_path / ".shipyard" / "logs"
    now = time.time()
    inst = logs / "prod" / "prod-r1-0-abc.log"
    inst.parent.mkdir(parents=True)
    # The oldest lines are in the rotated copy: the filter reads copies and live file as one stream.
    (inst.parent / (inst.name + ".1")).write_text(f"{iso(now - 7200)} boot\n{iso(now - 3000)} checkout slow\n")
    inst.write_text(f"{iso(now - 240)} checkout failed: db timeout\n  at db.py:12\n{iso(now - 5)} ok\n")
    (logs / "router").mkdir()
    (logs / "router" / "access.log").write_text("\n".join([
        access(now - 200, "prod", "/checkout", 500, TRACE), access(now - 100, "staging", "/checkout", 500, TRACE),
        access(now - 50, "prod", "/", 200, OTHER)]) + "\n")
    (logs / "control.log").write_text(json.dumps({"event": "deploy of r1 to prod started", "env": "prod",
                                                  "deployment": 3, "trace_id": TRACE, "timestamp": iso(now - 260)})
                                      + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def logs(*args: str) -> tuple[int, list[dict[str, object]], str]:
    r = CliRunner().invoke(app, ["logs", "--env", "prod", "--json", *args])
    rows = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return r.exit_code, rows, r.stderr


def test_cli_filters_instance_and_router_logs(project: Path) -> None:
    code, rows, err = logs("--grep", "checkout")
    assert code == 0, err
    assert [r["line"] for r in rows] == [f for f in _texts(project) if "checkout" in f]
    code, rows, _ = logs("--since", "10m")
    assert [re.sub(r"^\S+Z ", "", str(r["line"])).strip() for r in rows] == ["checkout failed: db timeout", "at db.py:12", "ok"]
    code, rows, _ = logs("--grep", "checkout", "--router", "--since", "1h")
    assert [r["instance"] for r in rows] == ["prod-r1-0-abc", "prod-r1-0-abc", "router"]  # by time; staging's line left out
    code, rows, _ = logs("--trace", TRACE)
    assert [(r["instance"], json.loads(str(r["line"]))["trace_id"]) for r in rows] == [
        ("control", TRACE), ("router", TRACE)]
    code, rows, _ = logs("--grep", "checkout", "--lines", "1")
    assert len(rows) == 1 and "db timeout" in str(rows[0]["line"])
    for args in (("--since", "last week"), ("--trace", "nope"), ("--until", "soon")):
        code, _, err = logs(*args)
        assert code == 2 and args[0] in err and "Traceback" not in err, (args, err)


def _texts(project: Path) -> list[str]:
    d = project / ".shipyard" / "logs" / "prod"
    return (d / "prod-r1-0-abc.log.1").read_text().splitlines() + (d / "prod-r1-0-abc.log").read_text().splitlines()


def test_control_log_is_json_with_the_deployments_ids() -> None:
    buf = io.StringIO()
    logsetup.configure(stream=buf)
    log = logging.getLogger("shipyard.control")
    trace = logsetup.new_trace_id()

    async def deployment() -> None:
        logsetup.bind_deployment(12, "prod", "r2", trace)
        log.info("step %s done", "build")
        await asyncio.to_thread(log.info, "in a thread of the deployment")

    async def main() -> None:
        await asyncio.create_task(deployment())
        log.warning("not about a deployment")

    try:
        asyncio.run(main())
    finally:
        logging.getLogger().handlers.clear()
    docs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [d["event"] for d in docs] == ["step build done", "in a thread of the deployment", "not about a deployment"]
    for d in docs[:2]:
        assert (d["deployment"], d["env"], d["release"], d["trace_id"]) == (12, "prod", "r2", trace)
        assert d["level"] == "info" and d["logger"] == "shipyard.control" and d["timestamp"].endswith("Z")
    assert "trace_id" not in docs[2] and docs[2]["level"] == "warning"
    assert list(filter_lines(buf.getvalue().splitlines(), trace=trace)) == buf.getvalue().splitlines()[:2]
    assert len(trace) == 32 and int(trace, 16)


def test_follow_prints_only_new_matching_lines(project: Path) -> None:
    log = project / ".shipyard" / "logs" / "prod" / "prod-r1-0-abc.log"
    proc = subprocess.Popen([sys.executable, "-m", "shipyard", "logs", "--env", "prod", "-f", "--grep", "checkout",
                             "--lines", "1", "--json"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    guard = threading.Timer(30, proc.kill)  # a hung reader fails the test instead of blocking it
    guard.start()
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert "db timeout" in first["line"]  # the newest match so far
        with log.open("a") as f:
            f.write(f"{iso(time.time())} health ok\n{iso(time.time())} checkout retried\n")
        second = json.loads(proc.stdout.readline())  # the non-matching line is skipped
        assert second["line"].endswith("checkout retried") and second["instance"] == "prod-r1-0-abc"
    finally:
        guard.cancel()
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
