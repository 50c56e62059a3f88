"""An Argo Rollouts ``Rollout``'s progress, pure, and the patches that drive it.

``rollout_phase`` is the judgement ``kubectl argo rollouts status`` makes (argo-rollouts
utils/rollout/rolloututil.go ``GetRolloutPhase``): the controller must have observed the spec's generation
and any unpause, then its ``status.phase`` and ``message`` say Healthy, Progressing, Paused or Degraded.

The patches are the ones ``kubectl argo rollouts`` sends (pkg/kubectl-argo-rollouts/cmd/{promote,abort,
pause}): JSON merge patches of ``spec`` and of the ``status`` subresource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["Healthy", "Progressing", "Paused", "Degraded"]
Command = Literal["promote", "promote_full", "abort", "pause", "resume"]


@dataclass(frozen=True)
class CanaryProgress:
    phase: Phase
    message: str
    step: int | None  # status.currentStepIndex (None: no steps, or a first deploy)
    steps: int
    weight: int | None  # the canary's share of the replicas as Argo set it
    aborted: bool

    @property
    def done(self) -> bool:
        return self.phase == "Healthy"

    @property
    def failed(self) -> bool:
        return self.phase == "Degraded"

    def describe(self) -> str:
        # The step index only means something while the steps run (an abort resets it to 0).
        running = self.phase in ("Progressing", "Paused")
        at = f" at step {self.step}/{self.steps}" if running and self.step is not None and self.steps else ""
        weight = f" ({self.weight}% canary)" if self.weight is not None and not self.done else ""
        return f"{self.phase}{at}{weight}" + (f": {self.message}" if self.message else "")

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "message": self.message, "step": self.step, "steps": self.steps,
                "weight": self.weight, "aborted": self.aborted}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _weight(status: Mapping[str, Any]) -> int | None:
    weights = (status.get("canary") or {}).get("weights") or {}
    return _int((weights.get("canary") or {}).get("weight"))


def rollout_phase(ro: Mapping[str, Any]) -> CanaryProgress:
    meta, spec, status = ro.get("metadata") or {}, ro.get("spec") or {}, ro.get("status") or {}
    steps = len(((spec.get("strategy") or {}).get("canary") or {}).get("steps") or [])
    step = _int(status.get("currentStepIndex"))
    aborted = bool(status.get("abort"))

    def progress(phase: Phase, message: str) -> CanaryProgress:
        return CanaryProgress(phase, message, step, steps, _weight(status), aborted)

    observed = _int(status.get("observedGeneration"))
    if observed is None or observed < int(meta.get("generation") or 0):  # the status is the previous spec's
        return CanaryProgress("Progressing", "waiting for rollout spec update to be observed", None, steps, None, aborted)
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return progress("Progressing", "waiting for rollout to unpause")
    phase = status.get("phase")
    if aborted and phase != "Degraded":
        # `abort` patched, not yet acted on: the controller's Degraded (with its message) is the outcome.
        return progress("Progressing", "aborting: waiting for the controller")
    if phase in ("Healthy", "Progressing", "Paused", "Degraded"):
        return progress(phase, str(status.get("message") or ""))
    return progress("Progressing", "waiting for the controller to report a phase")


@dataclass(frozen=True)
class Patches:
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


def _next_step(ro: Mapping[str, Any]) -> int | None:
    """``replicasetutil.GetCurrentCanaryStep`` + 1, bounded by the number of steps."""
    steps = len(((ro.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("steps") or [])
    if not steps:
        return None
    index = _int((ro.get("status") or {}).get("currentStepIndex")) or 0
    return index + 1 if index < steps else index


def patches(ro: Mapping[str, Any], command: Command) -> Patches:
    """What ``kubectl argo rollouts promote [--full] | abort | pause`` (and ``resume``: unpause) patch."""
    spec, status = ro.get("spec") or {}, ro.get("status") or {}
    if command == "abort":
        return Patches(status={"status": {"abort": True}})
    if command == "pause":
        return Patches(spec={"spec": {"paused": True}})
    if command == "resume":
        return Patches(spec={"spec": {"paused": False}})
    if command == "promote_full":
        full = status.get("currentPodHash") != status.get("stableRS")
        return Patches(status={"status": {"promoteFull": True}} if full else None)
    spec_patch = {"spec": {"paused": False}} if spec.get("paused") else None
    pause = status.get("pauseConditions") or []
    inconclusive = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {}).get("status") == "Inconclusive"
    nxt = _next_step(ro)
    if inconclusive and pause and status.get("controllerPause") and nxt is not None:
        return Patches(spec_patch, {"status": {"pauseConditions": None, "controllerPause": False,
                                               "currentStepIndex": nxt}})
    if pause:
        return Patches(spec_patch, {"status": {"pauseConditions": None}})
    if nxt is not None:
        return Patches(spec_patch, {"status": {"pauseConditions": None, "currentStepIndex": nxt}})
    return Patches(spec_patch)
