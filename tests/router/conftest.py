"""Fixtures: a real router process and real upstream processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.primitives.pgcluster import free_port

from .helpers import HERE, RouterProc, Upstream, start_router, stop_router, wait_port


@pytest.fixture
def upstreams() -> Iterator[Callable[..., list[Upstream]]]:
    started: list[Upstream] = []

    def start(*ids: str) -> list[Upstream]:
        out = []
        for iid in ids:
            port = free_port()
            proc = subprocess.Popen([sys.executable, str(HERE / "upstream_app.py"), str(port), iid],
                                    stdout=subprocess.DEVNULL)
            up = Upstream(iid, port, proc)
            started.append(up)
            out.append(up)
        for up in out:
            wait_port(up.port)
        return out

    yield start
    for up in started:
        up.stop()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterProc]:
    rp = start_router(tmp_path, admin_port=free_port())
    yield rp
    stop_router(rp)
    assert rp.proc.returncode == 0, rp.proc.stderr.read().decode() if rp.proc.stderr else ""
