"""The live deploy / canary view, pure: what the page shows of one environment right now, built from what
the control plane already has — the status document (weights, the running canary's step and decision,
the watch), the running deployment's plan and recorded steps, and the deployments waiting for approval.

``StepClock`` remembers when each canary step was first seen (the server samples once a second, so within
a second of its start): the time to the next step is the step's duration minus what has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.primitives.clock import Clock
from shipyard.primitives.store.records import DeploymentRec, StepRec


@dataclass
class StepClock:
    clock: Clock
    _seen: dict[str, tuple[tuple[str, int], float]] = field(default_factory=dict)

    def started(self, env: str, release: str, index: int) -> float:
        """When step ``index`` of ``release``'s canary on ``env`` was first seen (monotonic seconds)."""
        key = (release, index)
        seen = self._seen.get(env)
        if seen is None or seen[0] != key:
            seen = (key, self.clock.monotonic())
            self._seen[env] = seen
        return seen[1]

    def elapsed(self, env: str, release: str, index: int) -> float:
        return self.clock.monotonic() - self.started(env, release, index)

    def forget(self, env: str) -> None:
        self._seen.pop(env, None)


def live_env(status: dict[str, Any], deployment: DeploymentRec | None, steps: Sequence[StepRec],
             waiting: Sequence[dict[str, Any]], steps_plan: Sequence[dict[str, Any]], clock: StepClock
             ) -> dict[str, Any]:
    """One environment's live document (what the SSE stream sends, and the page renders first).

    ``steps_plan``: the running canary's expanded steps (``CanaryStep.to_json``), for their durations."""
    env = status["env"]
    canary = status.get("canary")
    out: dict[str, Any] = {
        "env": env, "release": status.get("release"), "weights": status.get("weights") or {},
        "deployment": _deployment(deployment, steps), "canary": None, "watch": status.get("watch"),
        "waiting": [w for w in waiting if w.get("env") == env],
        "last": status.get("last_deployment"),
    }
    if canary is None:
        clock.forget(env)
        return out
    step = canary.get("step") or {}
    index = int(step.get("index", -1))
    duration = next((s.get("duration") for s in steps_plan if s.get("index") == index), None)
    elapsed = clock.elapsed(env, canary["release"], index)
    decision = canary.get("decision") or {}
    out["canary"] = {
        "release": canary["release"], "stable": canary["stable"], "weight": canary["weight"],
        "paused": canary["paused"], "paused_because": canary.get("paused_because"),
        "step": {**step, "number": index + 1, "of": canary.get("total_steps"), "duration": duration,
                 "elapsed_s": round(elapsed, 1)},
        "next_step": next_step(step.get("kind"), duration, elapsed, bool(canary["paused"]), decision),
        "decision": {"action": decision.get("action"), "reason": decision.get("reason")} if decision else None,
        "verdict": _verdict(decision.get("verdict")),
        "firing": [{"condition": f.get("describe"), "value": f.get("value"), "window": f.get("window"),
                    "reason": f.get("reason")} for f in decision.get("firing") or []],
    }
    return out


def next_step(kind: str | None, duration: float | None, elapsed: float, paused: bool,
              decision: dict[str, Any]) -> dict[str, Any]:
    """When the next step comes: ``in_s`` seconds (at the earliest: a judged step ends only on a pass),
    or why it does not come by itself."""
    if paused:
        return {"in_s": None, "text": "paused: waits for resume or promote"}
    if kind == "gate":
        return {"in_s": None, "text": "manual gate: waits for promote"}
    if kind in ("bake", "analysis") and duration is not None:
        left = max(0.0, duration - elapsed)
        if left > 0:
            return {"in_s": round(left, 1), "text": f"next step in {left:.0f}s if the judgement passes"}
        return {"in_s": 0.0, "text": f"step time is over; waiting for a passing judgement ({decision.get('reason') or 'judging'})"}
    return {"in_s": 0.0, "text": "next step now"}


def _verdict(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if not v:
        return None
    return {"outcome": v.get("outcome"), "reason": v.get("reason"), "window": v.get("window"),
            "checks": [{"name": c.get("name"), "outcome": c.get("outcome"), "canary": c.get("canary_value"),
                        "stable": c.get("stable_value"), "p_value": c.get("p_value"),
                        "tolerance": c.get("tolerance"), "method": c.get("method"), "reason": c.get("reason"),
                        "canary_n": c.get("canary_n"), "stable_n": c.get("stable_n")}
                       for c in v.get("checks") or []]}


def _deployment(dep: DeploymentRec | None, steps: Sequence[StepRec]) -> dict[str, Any] | None:
    if dep is None:
        return None
    done = {s.index: s for s in steps}
    return {"id": dep.id, "kind": dep.kind, "release": dep.release, "previous": dep.previous_release,
            "strategy": dep.strategy, "started_at": dep.started_at,
            "steps": [{"index": i, "kind": p.get("kind"), "description": p.get("description"),
                       "status": done[i].status if i in done else "pending",
                       "duration_s": done[i].duration_s if i in done else None}
                      for i, p in enumerate(dep.plan)]}
