"""What the supervisor runs and reports: an instance's spec, its status, its environment, its backoff.

Plain values, kept apart from the supervisor's machinery so the routing state and the deploy target
can use them without importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shipyard.engine.rollout.launch import Limits
from shipyard.primitives.baseenv import BASE_VARS, base_environment, system_path
from shipyard.primitives.probe import Probe

__all__ = ["BASE_VARS", "InstanceSpec", "InstanceStatus", "backoff_delay", "base_environment",
           "instance_environment", "system_path"]

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
    limits: Limits = Limits()
    process: str = "web"       # its process type; only web is routed and probed over HTTP
    check: str | None = None   # the others: healthy while alive, or while this command exits 0


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
    # Why it was last restarted: "unhealthy" (with the failing probe results), "exited" (see last_exit) or
    # "oom" (killed past its memory limit).
    restart_cause: str | None = None
    health_errors: tuple[str, ...] = ()
    probe_error: str | None = None  # the newest failing probe result
    role: str = "stable"
    adopted: bool = False
    process: str = "web"
    memory_limit: int | None = None  # bytes, when it has one
    cpu_limit: float | None = None   # cores
    # How the limits are held: "cgroup v2" / "cgroup v1", "watched" (memory by psutil), or None (no limits).
    limits_enforced: str | None = None
    oom_kills: int = 0


OnChange = Callable[[InstanceStatus], None]
OnEvent = Callable[[str, str, str, dict[str, Any]], None]


def backoff_delay(streak: int) -> float:
    """Delay before restart number ``streak`` (0-based) of an instance that keeps failing."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(streak, 16)))


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
