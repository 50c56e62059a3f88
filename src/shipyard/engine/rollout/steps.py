"""Deployment steps: one frozen dataclass per kind, carried whole from the plan to the executor.

Strategies return tuples of steps (pure); ``--plan`` renders them; the executor dispatches on their
type with ``match``; the record of a deployment stores each one's ``to_json()``, so what the plan
showed and what ran can be compared field by field. Steps that act on instances started earlier in
the same deployment name them by ``tag`` (the ids are only known at run time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from shipyard.engine.rollout.canary import CanaryStep


@dataclass(frozen=True)
class RoutingCommit:
    """What a step that moves all traffic records as the environment's current and previous release."""

    current: str
    previous: str | None


@dataclass(frozen=True, kw_only=True)
class StepBase:
    kind: ClassVar[str]
    description: str

    @property
    def params(self) -> dict[str, Any]:
        """The step's fields as JSON (unset optional fields left out): what --plan shows and history keeps."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "description" and value is not None:
                out[f.name] = _jsonable(value)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "params": self.params}


def _jsonable(value: Any) -> Any:
    if isinstance(value, RoutingCommit):
        return {"current": value.current, "previous": value.previous}
    if isinstance(value, CanaryStep):
        return value.to_json()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class BuildStep(StepBase):
    """Build ``release`` from ``sha`` (``ref`` as the user gave it)."""

    kind: ClassVar[str] = "build"
    release: str
    ref: str
    sha: str
    commands: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReleaseCommandStep(StepBase):
    """The release command (migrations): once, in the new release, with the environment's configuration
    and secrets, before any instance of the release takes traffic; failing fails the deployment."""

    kind: ClassVar[str] = "release_command"
    release: str
    commands: tuple[str, ...]
    timeout: float


@dataclass(frozen=True, kw_only=True)
class HookStep(StepBase):
    """A ``[hooks]`` entry. ``may_fail``: a failure is recorded and shown, and the deployment goes on
    (post_deploy, post_rollback); otherwise it aborts the deployment (pre_build, pre_deploy)."""

    kind: ClassVar[str] = "hook"
    hook: str
    release: str
    commands: tuple[str, ...]
    timeout: float
    may_fail: bool = False


@dataclass(frozen=True, kw_only=True)
class StartStep(StepBase):
    """Start ``count`` instances of one process type of ``release`` (only ``web`` is routed)."""

    kind: ClassVar[str] = "start"
    release: str
    count: int
    tag: str
    role: str = "stable"
    process: str | None = None  # None: web


@dataclass(frozen=True, kw_only=True)
class WaitReadyStep(StepBase):
    kind: ClassVar[str] = "wait_ready"
    tag: str
    timeout: float


@dataclass(frozen=True, kw_only=True)
class RouteStep(StepBase):
    """Set the routing weights; with ``commit``, all traffic moved and the environment records it."""

    kind: ClassVar[str] = "route"
    weights: Mapping[str, int]
    commit: RoutingCommit | None = None


@dataclass(frozen=True, kw_only=True)
class UnrouteStep(StepBase):
    """Take instances out of rotation (rolling), with the weights that hold after it."""

    kind: ClassVar[str] = "unroute"
    ids: tuple[str, ...]
    weights: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class DrainStep(StepBase):
    """Wait until no request is in flight to ``release`` (or to ``ids``), up to ``timeout``."""

    kind: ClassVar[str] = "drain"
    timeout: float
    release: str | None = None
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class StopStep(StepBase):
    """Stop instances: by ``ids``, by the ``tag`` of a start step, or every one of ``release``."""

    kind: ClassVar[str] = "stop"
    ids: tuple[str, ...] | None = None
    tag: str | None = None
    release: str | None = None


@dataclass(frozen=True, kw_only=True)
class KeepWarmStep(StepBase):
    """Leave ``release`` running unrouted; stop it after ``delay`` (0: now)."""

    kind: ClassVar[str] = "keep_warm"
    release: str
    delay: float


@dataclass(frozen=True, kw_only=True)
class VerifyStep(StepBase):
    """Load verification (go / no-go); ``preview``: against the new release before the switch."""

    kind: ClassVar[str] = "verify"
    release: str
    preview: bool = False


@dataclass(frozen=True, kw_only=True)
class BackupStep(StepBase):
    """``backup.before_deploy``: back up the environment's ``sources`` first; a failure stops the deploy
    before anything changed (the serving release keeps serving)."""

    kind: ClassVar[str] = "backup"
    env: str
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CanaryPhaseStep(StepBase):
    """One step of a canary rollout (weight, bake, gate, analysis), judged live; failing rolls back."""

    kind: ClassVar[str] = "canary"
    phase: CanaryStep
    release: str
    stable: str


Step = (BuildStep | ReleaseCommandStep | HookStep | StartStep | WaitReadyStep | RouteStep | UnrouteStep | DrainStep
        | StopStep | KeepWarmStep | VerifyStep | CanaryPhaseStep | BackupStep)

STEP_KINDS: tuple[str, ...] = tuple(c.kind for c in (
    BuildStep, ReleaseCommandStep, HookStep, StartStep, WaitReadyStep, RouteStep, UnrouteStep, DrainStep, StopStep,
    KeepWarmStep, VerifyStep, CanaryPhaseStep, BackupStep))
