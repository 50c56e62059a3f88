"""What the supervisor runs and reports: an instance's spec, its status, its environment, its backoff.

Plain values, kept apart from the supervisor's machinery so the routing state and the deploy target
can use them without importing it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shipyard.primitives.probe import Probe

State = Literal["starting", "ready", "unready", "restarting", "stopping", "stopped", "crashed"]

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
# Ready this long without a crash and the backoff starts again from the first step.
BACKOFF_RESET_AFTER = 60.0


@dataclass(frozen=True)
class InstanceSpec:
    id: str
    env: str
    release: str
    index: int
    cmd: str | list[str]
    cwd: Path
    env_vars: dict[str, str]
    port: int
    log_path: Path
    health: Probe
    ready: Probe | None = None
    stop_signal: str = "SIGTERM"
    stop_grace: float = 30.0
    role: str = "stable"


@dataclass(frozen=True)
class InstanceStatus:
    id: str
    env: str
    release: str
    index: int
    port: int
    pid: int | None
    create_time: float | None
    state: State
    ready: bool
    restarts: int
    started_at: float | None        # wall clock, when the current process started
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    last_exit: str | None = None
    consecutive_health_failures: int = 0
    # Why it was last restarted: "unhealthy" (with the failing probe results) or "exited" (see last_exit).
    restart_cause: str | None = None
    health_errors: tuple[str, ...] = ()
    probe_error: str | None = None  # the newest failing probe result
    role: str = "stable"
    adopted: bool = False


OnChange = Callable[[InstanceStatus], None]
OnEvent = Callable[[str, str, str, dict[str, Any]], None]


def backoff_delay(streak: int) -> float:
    """Delay before restart number ``streak`` (0-based) of an instance that keeps failing."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(streak, 16)))


# What an instance gets from the environment of `shipyard up`, and nothing else (docs/architecture.md,
# README "The instance environment"): a bare `python3` or `gunicorn` in `run` must not come from
# shipyard's own venv, nor a variable of the operator's shell leak into the app.
BASE_VARS = ("HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")


def system_path(inherited: Mapping[str, str]) -> str:
    """``PATH`` without shipyard's own virtualenv (nor the one ``VIRTUAL_ENV`` names): the system's."""
    drop = {os.path.dirname(sys.executable)} if sys.prefix != sys.base_prefix else set()
    if sys.prefix != sys.base_prefix:
        drop.add(os.path.join(sys.prefix, "bin"))
    if inherited.get("VIRTUAL_ENV"):
        drop.add(os.path.join(inherited["VIRTUAL_ENV"], "bin"))
    drop = {os.path.normpath(d) for d in drop}
    kept = [d for d in inherited.get("PATH", "").split(os.pathsep) if d and os.path.normpath(d) not in drop]
    return os.pathsep.join(dict.fromkeys(kept)) or os.defpath


def base_environment(cwd: Path, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The documented base: the system PATH (the release's own ``.venv/bin`` first when it has one),
    HOME, LANG/LC_ALL, TZ, USER/LOGNAME, TMPDIR and PYTHONUNBUFFERED=1."""
    src = os.environ if inherited is None else inherited
    env = {k: src[k] for k in BASE_VARS if src.get(k)}
    if not all(k in env for k in ("HOME", "USER", "LOGNAME")):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwuid(os.getuid())
            env.setdefault("HOME", pw.pw_dir)
            env.setdefault("USER", pw.pw_name)
            env.setdefault("LOGNAME", pw.pw_name)
    path = system_path(src)
    venv_bin = cwd / ".venv" / "bin"
    if venv_bin.is_dir():
        path = f"{venv_bin}{os.pathsep}{path}"
    env["PATH"] = path
    # Python buffers stdout when it is not a terminal; `shipyard logs` should show lines as they come.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def instance_environment(spec: InstanceSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment: the base (``base_environment`` of ``base``, default ours) → the
    instance's variables (env tables, ``.env.<env>``, secrets) → what shipyard sets."""
    env = base_environment(spec.cwd, base)
    env.update(spec.env_vars)
    env.update({
        "PORT": str(spec.port),
        "SHIPYARD_ENV": spec.env,
        "SHIPYARD_RELEASE": spec.release,
        "SHIPYARD_INSTANCE": spec.id,
    })
    return env
