"""A canary rollout's live side: performs each canary step of the plan against a target.

The pure parts decide (``engine.rollout.canary.decide``, ``engine.analysis``); the runner only feeds
them once a second — the metric source's newest samples, the judgement of canary vs stable over the
step's window, the triggers firing on the canary, the operator's command — and does what the decision
says. A rollback is a failed step: the executor's recovery puts 100% back on stable at once, then
drains and stops the canary; the failing condition, the observed values and the window go into the
step's record (history, ``--json``) through ``CanaryRollback.detail``.

``CanaryRun`` is the operator's handle (pause, resume, promote, abort) and the live view; the step it
runs is the very ``CanaryStep`` the plan carries, never looked up again by index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.analysis.judgement import JudgementSettings, judge_samples
from shipyard.engine.rollout.canary import CanaryStep, Command, decide
from shipyard.engine.rollout.steps import CanaryPhaseStep
from shipyard.engine.rollout.target import DeployTarget, MetricSource
from shipyard.engine.rollout.triggers import Triggers
from shipyard.errors import BadInput, DeployFailed, Refused
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.rollout import CanarySpec

COMMANDS = ("promote", "promote_full", "abort", "pause", "resume")
Emit = Callable[[dict[str, Any]], None]
OnEvent = Callable[[str, str], None]  # (kind, message) → the environment's event log


class CanaryRollback(DeployFailed):
    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class CanaryRun:
    """One environment's running canary: the operator's handle and the live view."""

    env: str
    release: str
    stable: str
    spec: CanarySpec
    steps: tuple[CanaryStep, ...] = ()
    command: Command | None = None
    paused: bool = False
    paused_because: str | None = None  # why it paused (the operator, or inconclusive too long), kept while paused
    resumed: bool = False
    skip_rest: bool = False
    weight: int = 0
    first_sec: int | None = None  # first second the canary had traffic
    step: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    emit: Emit = field(default=lambda ev: None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "stable": self.stable, "weight": self.weight, "paused": self.paused,
                "paused_because": self.paused_because if self.paused else None, "step": self.step,
                "total_steps": len(self.steps), "decision": self.decision}

    def control(self, command: str) -> str:
        """An operator's command; returns what will happen."""
        if command == "pause":
            self.paused, self.paused_because = True, "paused by the operator"
            return "paused: judgement and rollback triggers keep running; `shipyard resume` or `shipyard promote`"
        if command == "resume":
            if not self.paused:
                raise Refused(f"the canary on {self.env} is not paused")
            self.paused, self.resumed = False, True
            return "resumed"
        if command == "promote":
            self.paused, self.command = False, "promote"
            return "the current step ends now"
        if command == "promote_full":
            self.paused, self.command = False, "promote_full"
            return "promoting: remaining steps skipped"
        if command == "abort":
            self.command = "abort"
            return "aborting: traffic back to the stable release"
        raise BadInput(f"unknown canary command {command!r} (expected one of {', '.join(COMMANDS)})")


class CanaryRunner:
    """Performs the plan's canary steps for one run, fed by ``metrics``; ``triggers`` are the canary's
    rollback triggers and crash check."""

    def __init__(self, run: CanaryRun, target: DeployTarget, metrics: MetricSource, triggers: Triggers,
                 clock: Clock, on_event: OnEvent) -> None:
        self.run = run
        self.target = target
        self.metrics = metrics
        self.triggers = triggers
        self.clock = clock
        self.on_event = on_event

    async def perform(self, step: CanaryPhaseStep) -> dict[str, Any]:
        run, cs = self.run, step.phase
        run.step = {"index": cs.index, "kind": cs.kind, "weight": cs.weight, "description": cs.description}
        run.decision = None  # a decision belongs to its step
        if run.skip_rest:
            return {"skipped": "promoted by the operator"}
        if cs.kind == "weight":
            # A canary already failing at its current share gets no more traffic.
            self.check_now()
            await self.target.set_weights({run.release: cs.weight, run.stable: 100 - cs.weight}, None)
            run.weight = cs.weight
            if run.first_sec is None:
                run.first_sec = int(self.clock.time())
            run.emit({"event": "canary", "weight": cs.weight, "step": run.step, "action": "continue",
                      "reason": cs.description})
            return {"weight": cs.weight}
        return await self._judge(cs)

    def check_now(self) -> None:
        """Roll back (raise) if a trigger already fires on the canary since it first had traffic."""
        run = self.run
        if run.first_sec is None or self.metrics.end is None:
            return
        firing = self.triggers.firing(self.metrics, run.release, run.first_sec)
        if firing and run.steps:
            decision = decide(run.steps[0], elapsed=0.0, verdict=None, firing=firing)
            raise CanaryRollback(decision.reason, failure_detail(decision.to_json(), run))

    async def _judge(self, cs: CanaryStep) -> dict[str, Any]:
        run, col, clock = self.run, self.metrics, self.clock
        settings = JudgementSettings.from_spec(run.spec)
        start_sec = int(clock.time())
        t0 = clock.monotonic()
        announced = False  # a manual gate says once that it waits for a human (a notification)
        while True:
            await col.next_tick(timeout=3.0)
            end = col.end
            if run.resumed:
                # A resumed pause gets a fresh inconclusive allowance.
                run.resumed = False
                t0 = clock.monotonic() - (cs.duration or 0.0)
            verdict = None
            if end is not None and end > start_sec:
                verdict = judge_samples(col.since(start_sec), run.release, run.stable, start_sec, end,
                                        settings=settings)
            since = run.first_sec if run.first_sec is not None else start_sec
            firing = self.triggers.firing(col, run.release, since, cs.conditions)
            command, run.command = run.command, None
            decision = decide(cs, elapsed=clock.monotonic() - t0, verdict=verdict, firing=firing, command=command,
                              paused=run.paused, inconclusive_limit=run.spec.inconclusive_limit)
            run.decision = decision.to_json()
            run.emit({"event": "canary", "weight": run.weight, "step": run.step, "action": decision.action,
                      "reason": decision.reason, "paused": run.paused,
                      "verdict": verdict.to_json() if verdict else None})
            if decision.action == "wait" and cs.kind == "gate" and not announced:
                announced = True
                self.on_event("canary_waiting", decision.reason)
            if decision.action == "rollback":
                raise CanaryRollback(decision.reason, failure_detail(run.decision, run))
            if decision.action == "promote":
                run.skip_rest = True
                return {"promoted": decision.reason, "verdict": run.decision.get("verdict")}
            if decision.action == "continue":
                return {"reason": decision.reason, "verdict": run.decision.get("verdict")}
            if decision.action == "pause" and not run.paused:
                run.paused, run.paused_because = True, decision.reason
                self.on_event("canary_paused", decision.reason)


def failure_detail(decision: dict[str, Any], run: CanaryRun) -> dict[str, Any]:
    """What a rollback records: the failing conditions, observed values and windows."""
    failing: list[dict[str, Any]] = []
    for e in decision.get("firing") or []:
        failing.append({"condition": e["describe"], "release": e["release"], "instance": e["instance"],
                        "value": e["value"], "window": e["window"], "reason": e["reason"]})
    verdict = decision.get("verdict")
    if verdict and verdict.get("outcome") == "fail":
        for c in verdict["checks"]:
            if c["outcome"] == "fail":
                failing.append({"condition": f"judgement: {c['name']}", "release": run.release,
                                "value": {"canary": c["canary_value"], "stable": c["stable_value"],
                                          "p_value": c["p_value"], "tolerance": c["tolerance"]},
                                "window": verdict["window"], "reason": c["reason"]})
    return {"canary": {"weight": run.weight, "step": run.step, "failing": failing, "decision": decision}}
