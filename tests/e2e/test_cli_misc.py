"""Smaller commands: init, logs, config show, help, --version, and clear messages when the control plane is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from shipyard.primitives.process import is_alive

from .conftest import Project, wait_for


def test_init_writes_a_spec_that_loads(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    run = subprocess.run([sys.executable, "-m", "shipyard", "init", "--name", "web"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "shipyard.toml").read_text()
    assert 'name = "web"' in text and "python3 app.py" in text and "#" in text
    again = subprocess.run([sys.executable, "-m", "shipyard", "init"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_commands_need_a_running_control_plane(project: Project) -> None:
    for args in (("deploy", "--env", "staging"), ("rollback", "--env", "staging"), ("status",),
                 ("history", "--env", "staging"), ("releases",), ("promote", "--env", "staging")):
        proc = project.cli(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "not running" in proc.stderr and "shipyard up --detach" in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, (args, proc.stderr)
    assert "not running" in project.ok("down").stdout
    # Bad input is still bad input (exit 2) without a control plane.
    proc = project.cli("deploy", "--env", "prod")
    assert proc.returncode == 2 and "unknown environment 'prod'" in proc.stderr


def test_logs_and_history(running: Project) -> None:
    res: Any = running.json("deploy", "--env", "staging")
    for _ in range(3):
        running.get("/")
    logs = running.ok("logs", "--env", "staging").stdout
    assert "[staging-" in logs, logs  # several instances: each line is prefixed with its instance
    records = [json.loads(line) for line in running.ok("logs", "--env", "staging", "--json").stdout.splitlines()]
    assert records and all(set(r) == {"instance", "line"} and r["instance"].startswith("staging-") for r in records)
    one = running.ok("logs", "--env", "staging", "--instance", "0").stdout
    assert "[staging-" not in one
    bad = running.cli("logs", "--env", "staging", "--instance", "9")
    assert bad.returncode == 2 and "no instance 9" in bad.stderr
    hist = running.ok("history", "--env", "staging").stdout
    assert res["release"] in hist and "succeeded" in hist
    st = running.ok("status").stdout
    assert "staging" in st and res["release"] in st
    # Instances and their logs outlive the control plane: logs reads the files without it.
    info = json.loads((running.dir / ".shipyard" / "control.json").read_text())
    os.kill(info["pid"], signal.SIGKILL)
    assert wait_for(lambda: not is_alive(info["pid"], info["create_time"]), timeout=30)
    proc = running.cli("logs", "--env", "staging", "--instance", "0")
    assert proc.returncode == 0 and "control plane is not running" in proc.stderr, proc.stderr
    assert proc.stdout.strip() and "[staging-" not in proc.stdout


def test_help_is_fast_and_complete() -> None:
    out = subprocess.run([sys.executable, "-m", "shipyard", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("init", "up", "deploy", "rollback", "status", "history", "releases", "logs", "secrets", "config",
                "down", "verify", "backup"):
        assert cmd in out.stdout, cmd


def test_version_comes_from_the_package() -> None:
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "shipyard", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"shipyard {version('shipyard')}"


def test_up_in_the_foreground_becomes_the_control_plane(project: Project) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "shipyard", "up"], cwd=project.dir, env=project.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the control plane's log: wait for it to say it is ready
            if "control plane ready" in line:
                break
        assert project.control_pid() == proc.pid  # the CLI process became it (exec), no child in between
        assert "staging" in project.ok("status").stdout
        assert "stopped" in project.ok("down").stdout
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
