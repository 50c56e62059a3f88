"""The executor: performs a plan's steps, in order, against a target, and records each one.

It is deliberately thin: what to do comes from the plan, how from the target and the runners. Steps are
dispatched on their type; nothing is re-parsed. On a failed step it asks the target to put the serving
release back in service before reporting the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.rollout.steps import (
    BackupStep,
    BuildStep,
    CanaryPhaseStep,
    DrainStep,
    HookStep,
    KeepWarmStep,
    ReleaseCommandStep,
    RouteStep,
    StartStep,
    Step,
    StopStep,
    UnrouteStep,
    VerifyStep,
    WaitReadyStep,
)
from shipyard.engine.rollout.target import DeployTarget, StepRecorder, StepRunners
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock


@dataclass(frozen=True)
class StepResult:
    index: int
    step: Step
    status: str  # succeeded | failed | skipped
    started_at: float
    duration_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.step.kind, "description": self.step.description, "params": self.step.params,
                "status": self.status, "started_at": self.started_at, "duration_s": round(self.duration_s, 4),
                **({"detail": self.detail} if self.detail else {})}


@dataclass(frozen=True)
class ExecResult:
    ok: bool
    results: tuple[StepResult, ...]
    reason: str | None = None
    committed: bool = False  # whether all traffic was switched to the target release
    shifted: bool = False  # whether some traffic went to the target release (a canary step ran)
    warnings: tuple[str, ...] = ()  # steps allowed to fail that failed (post_deploy hooks)

    def failure(self) -> dict[str, Any] | None:
        """The failed step's record (for a canary: the failing conditions, observed values, windows)."""
        for r in self.results:
            if r.status == "failed":
                return {"step": r.step.kind, "description": r.step.description, **r.detail}
        return None


ProgressFn = Callable[[str, StepResult | Step, int], None]


async def execute(steps: Sequence[Step], target: DeployTarget, runners: StepRunners, recorder: StepRecorder,
                  clock: Clock, *, serving: str | None, on_progress: ProgressFn | None = None,
                  first_index: int = 0) -> ExecResult:
    """Run ``steps`` in order; stop at the first failure and restore ``serving``."""
    run = _Run(target, runners)
    results: list[StepResult] = []
    warnings: list[str] = []
    committed = shifted = False
    for index, step in enumerate(steps, start=first_index):
        t0, m0 = clock.time(), clock.monotonic()
        step_id = recorder.step_started(index, step, t0)
        if on_progress:
            on_progress("started", step, index)
        shifted = shifted or isinstance(step, CanaryPhaseStep)
        try:
            detail = await run.perform(step)
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
            if isinstance(step, HookStep) and step.may_fail:
                warnings.append(f"{step.hook} hook failed: {message}")
                continue
            await target.recover(serving, run.started, committed)
            for later_index, later in enumerate(steps[index - first_index + 1:], start=index + 1):
                results.append(StepResult(later_index, later, "skipped", clock.time(), 0.0))
            return ExecResult(False, tuple(results), message, committed, shifted, tuple(warnings))
        if isinstance(step, RouteStep) and step.commit is not None:
            committed = True
        dur = clock.monotonic() - m0
        recorder.step_finished(step_id, "succeeded", dur, detail or None)
        res = StepResult(index, step, "succeeded", t0, dur, detail or {})
        results.append(res)
        if on_progress:
            on_progress("succeeded", res, index)
    return ExecResult(True, tuple(results), None, committed, shifted, tuple(warnings))


class _Run:
    """One execution's memory: the ids each start step produced, under its tag."""

    def __init__(self, target: DeployTarget, runners: StepRunners) -> None:
        self.target = target
        self.runners = runners
        self.tags: dict[str, list[str]] = {}
        self.started: list[str] = []

    async def perform(self, step: Step) -> dict[str, Any]:
        t = self.target
        match step:
            case BuildStep():
                return await self.runners.build(step)
            case ReleaseCommandStep():
                return await self.runners.release_command(step)
            case HookStep():
                return await self.runners.hook(step)
            case StartStep(release=release, count=count, role=role, tag=tag, process=proc):
                ids = await (t.start(release, count, role) if proc is None
                             else t.start(release, count, role, process=proc))
                self.tags[tag] = ids
                self.started.extend(ids)
                return {"instances": ids}
            case WaitReadyStep(tag=tag, timeout=timeout):
                await t.wait_ready(self.tags[tag], timeout)
                return {}
            case RouteStep(weights=weights, commit=commit):
                await t.set_weights(weights, commit)
                return {"weights": dict(weights)}
            case UnrouteStep(ids=ids, weights=weights):
                await t.unroute(ids, weights)
                return {}
            case DrainStep(release=release, ids=ids, timeout=timeout):
                return (await t.drain(release, ids, timeout)).to_json()
            case StopStep(ids=ids, tag=tag, release=release):
                await t.stop(ids if ids is not None else (self.tags[tag] if tag is not None else None), release)
                return {}
            case KeepWarmStep(release=release, delay=delay):
                await t.keep_warm(release, delay)
                return {}
            case VerifyStep():
                return await self.runners.verify(step)
            case CanaryPhaseStep():
                return await self.runners.canary(step)
            case BackupStep():
                return await self.runners.backup(step)
