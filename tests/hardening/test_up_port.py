"""``shipyard up --port`` with a bad or busy port (issue "Hardening", item 10): exit 2, one line, nothing
left behind — no router, no control plane."""

from __future__ import annotations

import socket
import subprocess
import sys

import psutil
import pytest
from sandbox import Project


def _leftovers(project: Project) -> list[str]:
    state = str(project.dir / ".shipyard")
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if (proc.info["cwd"] or "").startswith(state) or any(state in a for a in proc.info["cmdline"] or []):
                found.append(" ".join(proc.info["cmdline"] or []))
        except psutil.Error:
            pass
    return found


@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize(("port", "needle"), [
    ("70000", "--port: must be between 0 (any free port) and 65535, got 70000"),
    ("-1", "--port: must be between 0 (any free port) and 65535, got -1"),
    ("busy", "is not available"),
])
def test_a_bad_port_exits_2_with_one_line_and_starts_nothing(project: Project, port: str, needle: str,
                                                              detach: bool) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if port == "busy":
            port = str(busy.getsockname()[1])
        proc = project.cli("up", *(["--detach"] if detach else []), "--port", port, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (project.dir / ".shipyard" / "run" / "router.json").exists()
    assert project.control_pid() is None
    assert _leftovers(project) == []


def test_the_daemon_checks_the_port_itself(project: Project) -> None:
    proc = subprocess.run([sys.executable, "-m", "shipyard.control.daemon", "--project", str(project.dir),
                           "--port", "99999"], capture_output=True, text=True, timeout=60, env=project.env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --port: must be between 0 (any free port) and 65535, got 99999"
    assert not (project.dir / ".shipyard" / "run" / "router.json").exists()
