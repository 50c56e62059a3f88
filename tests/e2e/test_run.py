"""shipyard run: a one-off command with the environment's configuration and secrets, its exit code, a
record of it; -i under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

from shipyard.primitives.store import open_store

from .conftest import Project

PROBE = ("import os, sys; print('greeting=' + os.environ['GREETING']); "
         "print('token=' + os.environ['API_TOKEN']); print('release=' + os.environ['SHIPYARD_RELEASE']); "
         "print('cwd=' + os.getcwd()); sys.exit(3)")


def test_run_sees_config_and_secrets_and_returns_the_exit_code(running: Project) -> None:
    running.ok("secrets", "set", "--env", "staging", "API_TOKEN=s3cr3t-run")
    res = running.json("deploy", "--env", "staging")
    proc = running.cli("run", "--env", "staging", "--", sys.executable, "-c", PROBE)
    assert proc.returncode == 3, proc.stderr
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert lines["greeting"] == "hello" and lines["token"] == "s3cr3t-run"
    assert lines["release"] == res["release"]  # type: ignore[index]
    # Its instances' directory: the release's tree with staging's shared dirs (examples' `instance`).
    assert lines["cwd"].endswith(f"workdirs/staging/{res['release']}")  # type: ignore[index]
    store = open_store(None, running.dir / ".shipyard")
    try:
        runs = [e for e in store.list_events("staging") if e.kind == "run"]
    finally:
        store.close()
    assert len(runs) == 1 and runs[0].data and runs[0].data["exit_code"] == 3
    assert runs[0].data["performer"].startswith("local ("), "who ran it: the local admin, as the CLI's user"
    hist = running.json("history", "--env", "staging")
    assert hist[0]["performer"].startswith("local (")  # type: ignore[index]
    assert "s3cr3t-run" not in (runs[0].message + str(runs[0].data)), "never the environment's values"
    missing = running.cli("run", "--env", "staging")
    assert missing.returncode == 2 and "after --" in missing.stderr


def test_run_interactive_gets_a_terminal(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    code = "import sys; print('tty=' + str(sys.stdin.isatty() and sys.stdout.isatty())); print(input('name? '))"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI under a pseudo-terminal
        os.chdir(running.dir)
        os.execve(sys.executable, [sys.executable, "-m", "shipyard", "run", "--env", "staging", "-i", "--",
                                   sys.executable, "-c", code], running.env)
    out = b""
    deadline = time.monotonic() + 60
    sent = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if b"name?" in out and not sent:
            os.write(fd, b"shipyard\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert "tty=True" in text and "shipyard" in text.split("name?")[-1], text
    assert os.waitstatus_to_exitcode(status) == 0
