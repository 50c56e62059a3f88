"""The seams of a deployment: where it happens (``DeployTarget``), what it is measured by
(``MetricSource``), who performs the steps that are not infrastructure (``StepRunners``) and who records
it (``StepRecorder``).

``DeployTarget`` holds infrastructure operations only — start instances of a release, wait until they
are ready, set routing weights, drain, stop, observe. The local target drives the supervisor and the
router; a Kubernetes target implements the same protocol with Deployments, Services and rollout status.
The canary judgement and verification are engine runners (``engine.rollout.canary_runner``,
``engine.verify.gate``) that read a target's ``MetricSource`` or endpoint; they never live in a target.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from shipyard.engine.analysis.measurements import Sample
from shipyard.engine.rollout.steps import (
    BackupStep,
    BuildStep,
    CanaryPhaseStep,
    HookStep,
    ReleaseCommandStep,
    RoutingCommit,
    StepBase,
    VerifyStep,
)


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    inflight: int
    reason: str | None = None  # why it is not known to be drained (the router did not answer…)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"drained": self.drained, "inflight": self.inflight}
        if self.reason:
            out["reason"] = self.reason
        return out


class MetricSource(Protocol):
    """One environment's per-second samples (every instance, every second it has seen)."""

    @property
    def end(self) -> int | None:
        """First second not collected yet (None before the first pull)."""

    async def next_tick(self, timeout: float = 3.0) -> bool: ...

    def since(self, t: int) -> Iterator[Sample]: ...


class DeployTarget(Protocol):
    async def start(self, release: str, count: int, role: str, *, process: str = "web") -> list[str]:
        """Start ``count`` instances of a process type of ``release``; returns their ids. Only ``web``
        instances are routed; the others are healthy while alive (or while their check passes)."""

    async def wait_ready(self, ids: Sequence[str], timeout: float) -> None:
        """Raise ``DeployFailed`` (with the cause) unless every instance is ready within ``timeout``."""

    async def set_weights(self, weights: Mapping[str, int], commit: RoutingCommit | None) -> None: ...

    async def unroute(self, ids: Sequence[str], weights: Mapping[str, int] | None) -> None: ...

    async def drain(self, release: str | None, ids: Sequence[str] | None, timeout: float) -> DrainResult: ...

    async def stop(self, ids: Sequence[str] | None, release: str | None) -> None: ...

    async def keep_warm(self, release: str, delay: float) -> None: ...

    async def recover(self, serving: str | None, started: Sequence[str], committed: bool) -> None:
        """Put ``serving`` back in service (switching back if traffic had moved) and stop ``started``."""

    def observe(self) -> AbstractAsyncContextManager[MetricSource]:
        """The environment's live measurements for the duration of the block."""

    def endpoint(self, release: str, preview: bool) -> str:
        """The URL verification loads: the environment's, or one instance of ``release`` (preview)."""


class StepRunners(Protocol):
    """The steps that are not infrastructure: building a release, its release command, hooks, a canary
    phase, verification."""

    async def build(self, step: BuildStep) -> dict[str, Any]: ...

    async def release_command(self, step: ReleaseCommandStep) -> dict[str, Any]: ...

    async def hook(self, step: HookStep) -> dict[str, Any]: ...

    async def canary(self, step: CanaryPhaseStep) -> dict[str, Any]: ...

    async def verify(self, step: VerifyStep) -> dict[str, Any]: ...

    async def backup(self, step: BackupStep) -> dict[str, Any]: ...


class StepRecorder(Protocol):
    def step_started(self, index: int, step: StepBase, at: float) -> int: ...

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None: ...
