"""Fixtures for engine tests: throwaway git repositories and the example services as real processes."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard.primitives.pgcluster import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_TIMEOUT_S = 30.0

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,  # the machine's git config must not matter
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


@dataclass
class GitRepo:
    path: Path

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        if files:
            self.write(files)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        git(self.path, "tag", name)

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def rev(self, ref: str) -> str:
        return git(self.path, "rev-parse", ref)


def init_repo(path: Path) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return GitRepo(path)


@pytest.fixture
def make_repo() -> Callable[[Path], GitRepo]:
    """make_repo(path) -> an empty git repository on branch main (test modules cannot import conftest)."""
    return init_repo


@pytest.fixture
def wait_ok() -> Callable[..., None]:
    return wait_http_ok


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """A git repo holding examples/app.py with VERSION v1, committed and tagged v1."""
    repo = init_repo(tmp_path / "repo")
    shutil.copy(EXAMPLES / "app.py", repo.path / "app.py")
    repo.commit("example app v1", {"VERSION": "v1\n"})
    repo.tag("v1")
    return repo


@dataclass
class RunningApp:
    proc: subprocess.Popen[str]
    port: int
    banner: str
    _conns: list[http.client.HTTPConnection] = field(default_factory=list)

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        self._conns.append(conn)
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        for conn in self._conns:
            conn.close()


def wait_http_ok(port: int, path: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll until path answers 200 (for servers that announce nothing when ready, like gunicorn)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return
            last = resp.status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{path} on port {port} not 200 within {timeout}s (last: {last})")


StartApp = Callable[..., RunningApp]


@pytest.fixture
def start_app() -> Iterator[StartApp]:
    """start_app(env=..., script=..., cwd=...) runs the stdlib example app and waits for its banner."""
    running: list[RunningApp] = []

    def start(env: dict[str, str] | None = None, script: Path | None = None) -> RunningApp:
        port = free_port()
        proc_env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULT_", "APP_VERSION", "SHIPYARD_"))}
        proc_env.update(env or {})
        proc_env["PORT"] = str(port)
        proc = subprocess.Popen(
            [sys.executable, str(script or EXAMPLES / "app.py")],
            env=proc_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        app = RunningApp(proc=proc, port=port, banner="")
        running.append(app)
        assert proc.stdout is not None
        # The banner is printed once the socket listens: the event to wait for.
        app.banner = proc.stdout.readline()
        assert "listening on" in app.banner, f"app did not start: {app.banner!r} {proc.stderr.read() if proc.stderr else ''}"
        return app

    yield start
    for app in running:
        app.close()
        if app.proc.poll() is None:
            app.proc.send_signal(signal.SIGKILL)
        app.proc.wait(timeout=30)
        for stream in (app.proc.stdout, app.proc.stderr):
            if stream is not None:
                stream.close()
