"""What the state database holds, as frozen dataclasses (times are float epoch seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]

DEPLOYMENT_OUTCOMES = frozenset({"succeeded", "failed", "rolled_back", "interrupted", "rejected", "expired"})
WAITING = "waiting_approval"  # a deployment created, not started: it waits for approvals (store/access.py)
STEP_STATUSES = frozenset({"pending", "running", "succeeded", "failed", "skipped"})
RELEASE_STATUSES = frozenset({"ready", "failed"})


@dataclass(frozen=True)
class ReleaseRec:
    id: str
    commit: str
    ref: str
    message: str
    author: str
    created_at: float
    build_duration_s: float
    content_hash: str
    spec: JSONDict  # the resolved spec the release was built with (no secret values)
    secrets_version: int
    build_log: str  # path of the build log file
    status: str  # "ready" | "failed"


@dataclass(frozen=True)
class EnvironmentRec:
    name: str
    current_release: str | None
    previous_release: str | None
    routing: JSONDict | None  # the last routing table sent to the router; None before the first
    secrets_version: int
    updated_at: float


@dataclass(frozen=True)
class DeploymentRec:
    id: int
    env: str
    kind: str  # "deploy" | "rollback"
    release: str
    previous_release: str | None
    strategy: str
    status: str  # "running" | one of DEPLOYMENT_OUTCOMES
    reason: str | None
    started_at: float
    finished_at: float | None
    plan: list[JSONDict]
    detail: JSONDict | None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class StepRec:
    id: int
    deployment_id: int
    index: int
    name: str
    status: str  # one of STEP_STATUSES
    started_at: float | None
    duration_s: float | None
    detail: JSONDict | None


@dataclass(frozen=True)
class EventRec:
    id: int
    env: str | None  # None for project-wide events
    kind: str
    message: str
    data: JSONDict | None
    at: float


@dataclass(frozen=True)
class InstanceRec:
    id: str
    env: str
    release: str
    index: int
    port: int
    pid: int | None
    create_time: float | None  # psutil's create_time: with pid, identifies the process across restarts
    role: str  # "stable" | "canary" | "preview" | "old"
    state: str
    started_at: float | None
    restarts: int = 0
    process: str = "web"  # its process type ([processes])


@dataclass(frozen=True)
class BackupRunRec:
    id: int
    env: str
    source: str
    status: str
    started_at: float
    finished_at: float | None
    backup_id: str | None
    detail: JSONDict | None


@dataclass(frozen=True)
class DrillRec:
    id: int
    env: str
    ok: bool
    started_at: float
    detail: JSONDict
