"""A canary rollout's live side: performs each ``canary`` step of the plan.

The pure parts decide (``engine.rollout.canary.decide``, ``engine.analysis``); this module only feeds
them once a second — the collector's newest samples, the judgement of canary vs stable over the
step's window, the triggers firing on the canary, the operator's command — and does what the decision
says. A rollback is a failed step: the executor's recovery puts 100% back on stable at once, then
drains and stops the canary; the failing condition, the observed values and the window go into the
step's record (history, ``--json``) through ``CanaryRollback.detail``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.control.collector import BOUNDS, Collector
from shipyard.control.triggers import Triggers
from shipyard.engine.analysis.judgement import JudgementSettings, judge_samples
from shipyard.engine.rollout.canary import CanaryStep, Command, canary_triggers, decide, expand
from shipyard.errors import BadInput, DeployFailed, Refused
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon
    from shipyard.control.runtime import EnvRuntime

COMMANDS = ("promote", "promote_full", "abort", "pause", "resume")


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
    rollback: RollbackSpec | None
    emit: Callable[[dict[str, Any]], None] = lambda ev: None
    collector: Collector | None = None
    triggers: Triggers | None = None
    steps: list[CanaryStep] = field(default_factory=list)
    command: Command | None = None
    paused: bool = False
    paused_because: str | None = None  # why it paused (the operator, or inconclusive too long), kept while paused
    resumed: bool = False
    skip_rest: bool = False
    weight: int = 0
    first_sec: int | None = None  # first second the canary had traffic
    step: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "stable": self.stable, "weight": self.weight, "paused": self.paused,
                "paused_because": self.paused_because if self.paused else None, "step": self.step, "total_steps": len(self.steps), "decision": self.decision}

    def control(self, command: str) -> str:
        """An operator's command; returns what will happen."""
        if command not in COMMANDS:
            raise BadInput(f"unknown canary command {command!r} (expected one of {', '.join(COMMANDS)})")
        if command == "pause":
            self.paused, self.paused_because = True, "paused by the operator"
            return "paused: judgement and rollback triggers keep running; `shipyard resume` or `shipyard promote`"
        if command == "resume":
            if not self.paused:
                raise Refused(f"the canary on {self.env} is not paused")
            self.paused, self.resumed = False, True
            return "resumed"
        if command in ("promote", "promote_full"):
            self.paused = False
        self.command = command  # type: ignore[assignment]
        return {"promote": "the current step ends now", "promote_full": "promoting: remaining steps skipped",
                "abort": "aborting: traffic back to the stable release"}[command]


def start_run(d: Daemon, env: str, release: str, stable: str, envspec: Any,
              emit: Callable[[dict[str, Any]], None]) -> CanaryRun:
    spec: CanarySpec = envspec.canary or CanarySpec()
    run = CanaryRun(env, release, stable, spec, envspec.rollback, emit, steps=expand(spec))
    run.triggers = Triggers(canary_triggers(spec, envspec.rollback), d.clock)
    d.canaries[env] = run
    return run


async def perform(d: Daemon, rt: EnvRuntime, params: dict[str, Any]) -> dict[str, Any]:
    """The ``canary`` step (LocalTarget.canary)."""
    run = d.canaries.get(rt.name)
    if run is None or run.collector is None:
        raise DeployFailed("internal error: canary step without a running canary")
    cs = run.steps[int(params["index"])]
    run.step = {"index": cs.index, "kind": cs.kind, "weight": cs.weight, "description": cs.description}
    run.decision = None  # a decision belongs to its step
    if run.skip_rest:
        return {"skipped": "promoted by the operator"}
    if cs.kind == "weight":
        # A canary already failing at its current share gets no more traffic.
        _check_now(d, run)
        await _set_weight(d, rt, run, cs.weight)
        run.emit({"event": "canary", "weight": cs.weight, "step": run.step, "action": "continue",
                  "reason": cs.description})
        return {"weight": cs.weight}
    return await _judge_step(d, run, cs)


async def _set_weight(d: Daemon, rt: EnvRuntime, run: CanaryRun, weight: int) -> None:
    from shipyard.control.runtime import LocalTarget

    await LocalTarget(rt).route({run.release: weight, run.stable: 100 - weight}, None)
    run.weight = weight
    if run.first_sec is None:
        run.first_sec = int(d.clock.time())


def _check_now(d: Daemon, run: CanaryRun) -> None:
    assert run.collector is not None and run.triggers is not None
    if run.first_sec is None or run.collector.end is None:
        return
    firing = [e for e in run.triggers.evaluate(run.collector, run.release, run.first_sec) if e.firing]
    if firing:
        cs = run.steps[0]
        decision = decide(cs, elapsed=0.0, verdict=None, firing=firing)
        raise CanaryRollback(decision.reason, _detail(decision.to_json(), run))


async def _judge_step(d: Daemon, run: CanaryRun, cs: CanaryStep) -> dict[str, Any]:
    col, trig = run.collector, run.triggers
    assert col is not None and trig is not None
    settings = JudgementSettings.from_spec(run.spec)
    clock = d.clock
    start_sec = int(clock.time())
    t0 = clock.monotonic()
    while True:
        await col.next_tick(timeout=3.0)
        end = col.end
        if run.resumed:
            # A resumed pause gets a fresh inconclusive allowance.
            run.resumed = False
            t0 = clock.monotonic() - (cs.duration or 0.0)
        verdict = None
        if end is not None and end > start_sec:
            verdict = judge_samples(col.since(start_sec), run.release, run.stable, start_sec, end, BOUNDS, settings)
        since = run.first_sec if run.first_sec is not None else start_sec
        firing = [e for e in trig.evaluate(col, run.release, since, cs.conditions) if e.firing]
        command, run.command = run.command, None
        decision = decide(cs, elapsed=clock.monotonic() - t0, verdict=verdict, firing=firing, command=command,
                          paused=run.paused, inconclusive_limit=run.spec.inconclusive_limit)
        run.decision = decision.to_json()
        run.emit({"event": "canary", "weight": run.weight, "step": run.step, "action": decision.action,
                  "reason": decision.reason, "paused": run.paused,
                  "verdict": verdict.to_json() if verdict else None})
        if decision.action == "rollback":
            raise CanaryRollback(decision.reason, _detail(run.decision, run))
        if decision.action == "promote":
            run.skip_rest = True
            return {"promoted": decision.reason, "verdict": run.decision.get("verdict")}
        if decision.action == "continue":
            return {"reason": decision.reason, "verdict": run.decision.get("verdict")}
        if decision.action == "pause" and not run.paused:
            run.paused, run.paused_because = True, decision.reason
            d.event(run.env, "canary_paused", decision.reason)


def _detail(decision: dict[str, Any], run: CanaryRun) -> dict[str, Any]:
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


@contextlib.asynccontextmanager
async def canary_session(d: Daemon, run: CanaryRun) -> Any:
    from shipyard.control.collector import collecting

    async with collecting(d, run.env) as col:
        run.collector = col
        try:
            yield run
        finally:
            if run.triggers is not None:
                run.triggers.cancel()
            d.canaries.pop(run.env, None)

