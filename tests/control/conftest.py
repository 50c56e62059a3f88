"""Fixtures for supervisor/health/process tests: an asyncio runner, leak cleanup, a recorder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from ctlkit import Recorder

from shipyard.primitives import process

T = TypeVar("T")


@pytest.fixture
def run() -> Callable[..., Any]:
    """Run a coroutine to completion on a fresh loop, failing (not hanging) after ``timeout``."""

    def runner(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(coro, timeout)

        return asyncio.run(bounded())

    return runner


@pytest.fixture(autouse=True)
def kill_leftovers() -> Iterator[None]:
    """No test leaves an instance behind: SIGKILL the groups of children it started, then reap."""
    before = set(process._children)
    yield
    for pid in set(process._children) - before:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        proc = process._children.pop(pid)
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
