"""Verify fixtures: real target servers in their own processes on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("target_server.py")

StartServer = Callable[..., str]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(*args)`` → base URL of a fresh target_server.py process (stopped after the test)."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen([sys.executable, str(SERVER), *args], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until READY (or EOF if it died)
        if not line.startswith("READY "):
            raise RuntimeError(f"target server did not start: {line!r}")
        return f"http://127.0.0.1:{int(line.split()[1])}"

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(start_server: StartServer) -> str:
    return start_server()
