"""A throwaway git project built from examples/app.py, driven through the real CLI.

Shared by ``make demo``, the end-to-end tests and the benchmarks. ``kill_everything`` is the last-resort
cleanup: every process the project may have left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
build = ["python3 -m compileall -q ."]
shared = ["instance"]

[app.health]
path = "/health"
interval = "{interval}"
timeout = "1s"
retries = 3
start_period = "10s"

[app.ready]
path = "/ready"

[defaults]
replicas = 2
strategy = "blue-green"
keep_releases = 5
drain_timeout = "5s"
deploy_timeout = "{deploy_timeout}"

[defaults.env]
GREETING = "hello"

[environments.staging]
port = {port}
replicas = {replicas}
"""


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Project:
    def __init__(self, root: Path, port: int) -> None:
        self.dir = root
        self.port = port
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"}
        self.env.pop("SHIPYARD_DATABASE_URL", None)

    def write_spec(self, *, replicas: int = 3, interval: str = "0.2s", deploy_timeout: str = "30s",
                   extra: str = "") -> None:
        (self.dir / "shipyard.toml").write_text(
            SPEC.format(port=self.port, replicas=replicas, interval=interval, deploy_timeout=deploy_timeout) + extra)

    def commit(self, version: str, *, app_env: dict[str, str] | None = None, files: dict[str, str] | None = None
               ) -> str:
        (self.dir / "VERSION").write_text(version + "\n")
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)
        git(self.dir, "add", "-A")
        git(self.dir, "commit", "-q", "-m", f"version {version}")
        return git(self.dir, "rev-parse", "HEAD")

    def cli(self, *args: str, timeout: float = 180, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def ok(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        proc = self.cli(*args, timeout=timeout)
        assert proc.returncode == 0, f"shipyard {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, *args: str, code: int = 0, timeout: float = 180) -> object:
        proc = self.cli(*args, "--json", timeout=timeout)
        assert proc.returncode == code, f"shipyard {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)

    def get(self, path: str = "/") -> tuple[int, dict[str, object]]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, {"raw": body.decode(errors="replace")}
        finally:
            conn.close()

    def control_pid(self) -> int | None:
        try:
            return int(json.loads((self.dir / ".shipyard" / "control.json").read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def kill_everything(self) -> None:
        """Last-resort cleanup: every process this project may have left running."""
        state = self.dir / ".shipyard"
        pids: list[int] = []
        cp = self.control_pid()
        if cp:
            pids.append(cp)
        try:
            pids.append(int(json.loads((state / "run" / "router.json").read_text())["pid"]))
        except (FileNotFoundError, ValueError, KeyError):
            pass
        db = state / "state.db"
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    pids += [r[0] for r in conn.execute("SELECT pid FROM instances") if r[0]]
            except sqlite3.Error:
                pass
        for pid in pids:
            for fn in (lambda p: os.killpg(p, signal.SIGKILL), lambda p: os.kill(p, signal.SIGKILL)):
                try:
                    fn(pid)
                except (ProcessLookupError, PermissionError):
                    pass
        # Instances started by a supervisor whose records were never written: find them by cwd.
        import psutil

        for proc in psutil.process_iter(["pid", "cwd"]):
            try:
                if proc.info["cwd"] and str(proc.info["cwd"]).startswith(str(state)):
                    os.killpg(proc.pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass


def make_project(tmp: Path, port: int | None = None) -> Project:
    root = tmp / "svc"
    root.mkdir()
    shutil.copy(EXAMPLES / "app.py", root / "app.py")
    (root / ".gitignore").write_text(".shipyard/\ninstance/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    return Project(root, port or free_port())




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False
