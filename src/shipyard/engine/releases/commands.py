"""Build commands: each through the shell in its own session, output streamed, killed on timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from shipyard.engine.releases.catalog import BUILD_LOG
from shipyard.errors import DeployFailed
from shipyard.primitives.clock import Clock

_TAIL_LINES = 20


def run_build(
    cmds: list[str],
    cwd: Path,
    env: dict[str, str],
    on_output: Callable[[str], None] | None,
    timeout: float,
    clock: Clock,
    header: Sequence[str] = (),
) -> None:
    """Run ``cmds`` in order in ``cwd``, logging to ``cwd/.shipyard-build.log`` and ``on_output`` (after the
    ``header`` lines); the first that fails or outlasts ``timeout`` (each) raises DeployFailed with the
    last lines of its output."""
    with (cwd / BUILD_LOG).open("w", encoding="utf-8") as log:

        def emit(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            if on_output is not None:
                on_output(line)

        for line in header:
            emit(line)
        for cmd in cmds:
            emit(f"$ {cmd}")
            t0 = clock.monotonic()
            tail: deque[str] = deque(maxlen=_TAIL_LINES)
            rc, timed_out = _run_one(cmd, cwd, env, timeout, emit, tail)
            took = clock.monotonic() - t0
            if timed_out:
                emit(f"[timed out after {timeout:g}s]")
                raise DeployFailed(f"build failed: `{cmd}` timed out after {timeout:g}s{_tail_text(tail)}")
            emit(f"[exit {rc} after {took:.1f}s]")
            if rc != 0:
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited {rc}"
                raise DeployFailed(f"build failed: `{cmd}` {how}{_tail_text(tail)}")


def _run_one(
    cmd: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    emit: Callable[[str], None],
    tail: deque[str],
) -> tuple[int, bool]:
    # Own session: a timeout kills everything the command started, not just the shell.
    proc = subprocess.Popen(
        cmd,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        _killpg(proc.pid)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        out: IO[bytes] | None = proc.stdout
        assert out is not None
        for raw in out:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tail.append(line)
            emit(line)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # interrupted (e.g. on_output raised): leave nothing running
            _killpg(proc.pid)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return rc, timed_out.is_set()


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail_text(tail: deque[str]) -> str:
    lines = [line for line in tail if line.strip()]
    if not lines:
        return " (no output)"
    return " — last lines:\n" + "\n".join(f"  {line}" for line in lines)


