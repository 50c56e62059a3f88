"""The executor: performs planned steps against a target and records each one.

It is deliberately thin: what to do comes from the strategy, how to do it from the target. On a failed
step it asks the target to put the previous release back in service before reporting the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.engine.rollout.steps import Step
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock


class Target(Protocol):
    """Where a deployment happens (the local machine; Kubernetes later)."""

    async def start(self, release: str, count: int, role: str) -> list[str]: ...

    async def wait_ready(self, ids: list[str], timeout: float) -> None: ...

    async def route(self, weights: dict[str, int], commit: dict[str, str | None] | None) -> None: ...

    async def unroute(self, ids: list[str], weights: dict[str, int] | None) -> None: ...

    async def drain(self, release: str | None, ids: list[str] | None, timeout: float) -> dict[str, Any]: ...

    async def stop(self, ids: list[str] | None, release: str | None) -> None: ...

    async def keep_warm(self, release: str, delay: float) -> None: ...

    async def verify(self, release: str, preview: bool) -> dict[str, Any]: ...

    async def canary(self, params: dict[str, Any]) -> dict[str, Any]:
        """Perform one canary step; raising fails it (and the executor then recovers)."""

    async def recover(self, serving: str | None, started: list[str], committed: bool) -> None:
        """Put ``serving`` back in service (switching back if traffic had moved) and stop ``started``."""


class Recorder(Protocol):
    def step_started(self, index: int, step: Step, at: float) -> int: ...

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None: ...


@dataclass(frozen=True)
class StepResult:
    index: int
    step: Step
    status: str  # succeeded | failed | skipped
    started_at: float
    duration_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.step.kind, "description": self.step.description, "status": self.status,
                "started_at": self.started_at, "duration_s": round(self.duration_s, 4), **(
                    {"detail": self.detail} if self.detail else {})}


@dataclass(frozen=True)
class ExecResult:
    ok: bool
    results: tuple[StepResult, ...]
    reason: str | None = None
    committed: bool = False  # whether traffic was switched to the target release
    shifted: bool = False  # whether some traffic went to the target release (a canary step ran)


ProgressFn = Callable[[str, StepResult | Step, int], None]


async def execute(steps: list[Step], target: Target, recorder: Recorder, clock: Clock, *,
                  serving: str | None, on_progress: ProgressFn | None = None) -> ExecResult:
    """Run ``steps`` in order; stop at the first failure and restore ``serving``."""
    tags: dict[str, list[str]] = {}
    started_ids: list[str] = []
    results: list[StepResult] = []
    committed = shifted = False
    for index, step in enumerate(steps):
        t0, m0 = clock.time(), clock.monotonic()
        step_id = recorder.step_started(index, step, t0)
        if on_progress:
            on_progress("started", step, index)
        shifted = shifted or step.kind == "canary"
        try:
            detail = await _perform(step, target, tags, started_ids)
        except Exception as exc:  # noqa: BLE001 - any failure must still put the old release back
            message = str(exc) if isinstance(exc, ShipyardError) else f"internal error in {step.kind}: {exc!r}"
            dur = clock.monotonic() - m0
            # An error may say more than its message (a canary's failing condition, values, window).
            extra = getattr(exc, "detail", None)
            failed = {"error": message, **(dict(extra) if isinstance(extra, Mapping) else {})}
            recorder.step_finished(step_id, "failed", dur, failed)
            res = StepResult(index, step, "failed", t0, dur, failed)
            results.append(res)
            if on_progress:
                on_progress("failed", res, index)
            await target.recover(serving, started_ids, committed)
            for later_index, later in enumerate(steps[index + 1:], start=index + 1):
                results.append(StepResult(later_index, later, "skipped", clock.time(), 0.0))
            return ExecResult(False, tuple(results), message, committed, shifted)
        if step.kind == "route" and step.params.get("commit"):
            committed = True
        dur = clock.monotonic() - m0
        recorder.step_finished(step_id, "succeeded", dur, detail or None)
        res = StepResult(index, step, "succeeded", t0, dur, detail or {})
        results.append(res)
        if on_progress:
            on_progress("succeeded", res, index)
    return ExecResult(True, tuple(results), None, committed, shifted)


async def _perform(step: Step, target: Target, tags: dict[str, list[str]], started: list[str]) -> dict[str, Any]:
    p = step.params
    if step.kind == "start":
        ids = await target.start(p["release"], int(p["count"]), p.get("role", "stable"))
        tags[p["tag"]] = ids
        started.extend(ids)
        return {"instances": ids}
    if step.kind == "wait_ready":
        await target.wait_ready(tags[p["tag"]], float(p["timeout"]))
        return {}
    if step.kind == "route":
        await target.route(dict(p["weights"]), p.get("commit"))
        return {"weights": dict(p["weights"])}
    if step.kind == "unroute":
        await target.unroute(list(p["ids"]), p.get("weights"))
        return {}
    if step.kind == "drain":
        return await target.drain(p.get("release"), p.get("ids"), float(p["timeout"]))
    if step.kind == "stop":
        stop_ids: list[str] | None = list(p["ids"]) if "ids" in p else (tags[p["tag"]] if "tag" in p else None)
        await target.stop(stop_ids, p.get("release"))
        return {}
    if step.kind == "keep_warm":
        await target.keep_warm(p["release"], float(p["delay"]))
        return {}
    if step.kind == "verify":
        return await target.verify(p["release"], bool(p.get("preview", False)))
    if step.kind == "canary":
        return await target.canary(dict(p))
    raise ShipyardError(f"unknown step kind {step.kind!r}")
