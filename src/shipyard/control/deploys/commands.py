"""Shell commands a deployment runs (the release command, hooks): streamed, kept, bounded in time.

Each command runs through the shell in the release's directory, in its own session (a timeout kills
everything it started), its output merged, streamed line by line to the live view and written to a log
file kept with the deployment. A non-zero exit or a timeout raises ``DeployFailed`` with the output's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from shipyard.control.instances import InstanceFactory
from shipyard.engine.rollout.launch import Launch
from shipyard.errors import DeployFailed
from shipyard.primitives.baseenv import base_environment
from shipyard.primitives.spec.durations import format_duration

TAIL_LINES = 20
MAX_LINE = 8192  # longer lines are cut: output is hostile until read


def release_environment(instances: InstanceFactory, env: str, launch: Launch, release: str,
                        cwd: Path) -> dict[str, str]:
    """What a command run for a release gets: exactly what its instances get (the documented base, config,
    .env file, secrets), without a port, plus where the project is (so it can run read-only shipyard commands)."""
    return {**base_environment(cwd), **instances.environment(env, launch), "SHIPYARD_ENV": env,
            "SHIPYARD_RELEASE": release, "SHIPYARD_PROJECT": str(instances.paths.project)}


async def run_commands(what: str, commands: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                       log_path: Path, on_line: Callable[[str], None]) -> list[str]:
    """Run ``commands`` in order; returns the output's last lines. ``what`` names them in messages."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        def emit(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            tail.append(line)
            on_line(line)

        for cmd in commands:
            emit(f"$ {cmd}")
            rc = await _run_one(cmd, cwd, dict(env), timeout, emit)
            if rc is None:
                emit(f"[timed out after {format_duration(timeout)}]")
                raise DeployFailed(f"{what}: `{cmd}` timed out after {format_duration(timeout)}{_tail(tail)}")
            emit(f"[exit {rc}]")
            if rc != 0:
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited {rc}"
                raise DeployFailed(f"{what}: `{cmd}` {how}{_tail(tail)}")
    return list(tail)


async def _run_one(cmd: str, cwd: Path, env: dict[str, str], timeout: float,
                   emit: Callable[[str], None]) -> int | None:
    proc = await asyncio.create_subprocess_shell(
        cmd, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True, limit=MAX_LINE * 2)
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line over the limit: take what is there
                raw = await proc.stdout.read(MAX_LINE)
            if not raw:
                return
            emit(raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n"))

    try:
        await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
    except TimeoutError:
        _killpg(proc.pid)
        await proc.wait()
        return None
    finally:
        if proc.returncode is None:  # cancelled: leave nothing running
            _killpg(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    return proc.returncode


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(tail: deque[str]) -> str:
    lines = [line for line in tail if line.strip() and not line.startswith("[exit ")]
    return " — last lines:\n" + "\n".join(f"  {line}" for line in lines) if lines else " (no output)"
