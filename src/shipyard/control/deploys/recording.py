"""What a deployment leaves behind: its steps in the state database, its live events, its result."""

from __future__ import annotations

from typing import Any

from shipyard.control.notify import canary_description
from shipyard.engine.rollout.executor import ExecResult, StepResult
from shipyard.engine.rollout.plan import Plan
from shipyard.engine.rollout.steps import Step, StepBase
from shipyard.primitives.store import Store


class StoreRecorder:
    def __init__(self, store: Store, deployment_id: int) -> None:
        self.store = store
        self.dep = deployment_id
        self._planned: dict[int, dict[str, Any]] = {}

    def step_started(self, index: int, step: StepBase, at: float) -> int:
        planned = {"description": step.description, "params": step.params}
        step_id = self.store.add_step(self.dep, index=index, name=step.kind, status="running", started_at=at,
                                      detail=planned)
        self._planned[step_id] = planned
        return step_id

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None:
        # What happened goes beside what was planned, never over it.
        self.store.update_step(step_id, status=status, duration_s=duration_s,
                               detail={**self._planned.pop(step_id, {}), **(detail or {})})


def progress_event(what: str, item: StepResult | Step, index: int) -> dict[str, Any]:
    step = item.step if isinstance(item, StepResult) else item
    ev: dict[str, Any] = {"event": "step", "status": what, "index": index, "name": step.kind,
                          "description": step.description}
    if isinstance(item, StepResult):
        ev["duration_s"] = round(item.duration_s, 3)
        if item.detail.get("error"):
            ev["error"] = item.detail["error"]
    return ev


def deployment_detail(plan: Plan, res: ExecResult | None, performer: str) -> dict[str, Any]:
    return {"config": plan.changes.get("config"), "secrets": plan.changes.get("secrets"), "performer": performer,
            "launch": plan.launch.to_json(), "commit": plan.commit.to_json(),
            "trigger": dict(plan.trigger) if plan.trigger else None,
            "rollback": res.failure() if res is not None else None}


def result_doc(plan: Plan, deployment: int, outcome: str, reason: str | None, res: ExecResult | None,
               watch: dict[str, Any] | None, duration_s: float) -> dict[str, Any]:
    return {"deployment": deployment, "env": plan.env, "kind": plan.kind, "outcome": outcome,
            "release": plan.release, "previous_release": plan.previous, "reason": reason,
            "rollback": res.failure() if res is not None else None, "watch": watch,
            "duration_s": round(duration_s, 3),
            "steps": [{"name": r.step.kind, "description": r.step.description, "params": r.step.params,
                       "status": r.status, "started_at": r.started_at, "duration_s": round(r.duration_s, 4)}
                      for r in (res.results if res is not None else ())]}


def lifecycle_notice(plan: Plan, outcome: str | None, reason: str | None, res: ExecResult | None
                     ) -> tuple[str, str, dict[str, Any]]:
    """(event kind, summary, details) of a deployment's start (``outcome`` None) or end, for notifications;
    a rolled-back canary's notice carries its failing conditions, values and windows."""
    what = f"{plan.kind} of {plan.release} on {plan.env}"
    labels = {"kind": plan.kind, "release": plan.release}
    if outcome is None:
        return "deployment_started", f"{what} started (serving {plan.previous or 'nothing'})", {"labels": labels}
    kind = {"succeeded": "deployment_succeeded", "rolled_back": "deployment_rolled_back"}.get(
        outcome, "deployment_failed")
    failure = res.failure() if res is not None else None
    description = canary_description(failure) if failure else ""
    summary = f"{what} {outcome.replace('_', ' ')}" + (f": {reason}" if reason else "")
    return kind, summary, {"labels": labels, "description": description, "failure": failure}
