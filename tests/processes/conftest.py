"""Fixtures of the process-type, limit, job and accessory tests: a bounded asyncio runner and a cleanup
that kills every process group a test's supervisor spawned."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shipyard.primitives import process

T = TypeVar("T")


@pytest.fixture
def run() -> Callable[..., Any]:
    def runner(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(coro, timeout)

        return asyncio.run(bounded())

    return runner


@pytest.fixture(autouse=True)
def kill_spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    spawned: list[int] = []
    real_spawn = process.spawn

    def recording_spawn(*args: Any, **kwargs: Any) -> process.ProcHandle:
        handle = real_spawn(*args, **kwargs)
        spawned.append(handle.pid)
        return handle

    monkeypatch.setattr(process, "spawn", recording_spawn)
    yield
    for pgid in spawned:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
        proc = process._children.pop(pgid, None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project  # noqa: E402

__all__ = ["Project", "make_project"]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A throwaway git project (examples/sandbox.py) driven through the real CLI; torn down whatever happens."""
    proj = make_project(tmp_path)
    proj.write_spec()
    proj.commit("v1")
    try:
        yield proj
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()
