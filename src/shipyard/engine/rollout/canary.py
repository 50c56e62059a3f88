"""Canary rollout, pure: the steps a ``CanarySpec`` expands to and the decision at each moment.

The executor stays thin: it performs a step (set weights, wait, promote), and while a step runs it
calls ``decide`` about once a second with the latest judgement and firing triggers, doing what the
``CanaryDecision`` says. ``--plan`` renders ``CanaryStep.description`` and ``plan_lines``.

Short form ``steps = [10, 50, 100]`` expands to: weight 10 → bake ``step_duration`` → weight 50 →
bake → weight 100 → promote. In the full form every item is taken literally (``{ pause = "1m" }`` is a
timed bake, ``{ pause = {} }`` a manual gate, ``{ analysis = "x" }`` a named analysis), then promote.

While the canary takes traffic (every step, gates included) a failed judgement or a firing trigger rolls
back at once — that is what makes detection take seconds. A timed step ends only on a *pass*: still
inconclusive at its end, it waits up to ``inconclusive_limit`` more, then pauses for a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shipyard.engine.analysis.conditions import Condition, Evaluation, conditions_from_spec
from shipyard.engine.analysis.judgement import JudgementSettings, Verdict, describe_settings
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.rollout import (
    AnalysisStep,
    CanarySpec,
    PauseStep,
    RollbackSpec,
    WeightStep,
)

StepKind = Literal["weight", "bake", "gate", "analysis", "promote"]
Action = Literal["continue", "wait", "rollback", "pause", "promote"]
# promote: finish the current step (resume a gate or a pause); promote_full: skip all remaining steps.
Command = Literal["promote", "promote_full", "abort"]


@dataclass(frozen=True)
class CanaryStep:
    index: int
    kind: StepKind
    weight: int  # percent of traffic on the canary while this step runs (after it, for "weight")
    description: str
    duration: float | None = None  # bake and analysis steps
    analysis: str | None = None
    conditions: tuple[Condition, ...] = ()  # an analysis step's own conditions, on the canary

    @property
    def judged(self) -> bool:
        """A step that ends only when the judgement passes."""
        return self.kind in ("bake", "analysis")

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "kind": self.kind,
            "weight": self.weight,
            "duration": self.duration,
            "analysis": self.analysis,
            "conditions": [c.describe() for c in self.conditions],
            "description": self.description,
        }


def _split(weight: int) -> str:
    return f"{weight}% canary / {100 - weight}% stable"


def expand(spec: CanarySpec) -> list[CanaryStep]:
    steps: list[CanaryStep] = []
    weight = 0
    dur = spec.step_duration

    def add(
        kind: StepKind,
        description: str,
        duration: float | None = None,
        analysis: str | None = None,
        conditions: tuple[Condition, ...] = (),
    ) -> None:
        steps.append(CanaryStep(len(steps), kind, weight, description, duration, analysis, conditions))

    def bake(seconds: float, what: str) -> None:
        add("bake", f"{what} {format_duration(seconds)} at {weight}%: judge canary vs stable; "
            "pass to go on, fail rolls back", duration=seconds)

    for item in spec.steps:
        if isinstance(item, int):  # short form
            weight = item
            add("weight", f"route {_split(weight)}")
            if weight < 100:
                bake(dur, "bake")
        elif isinstance(item, WeightStep):
            weight = item.weight
            add("weight", f"route {_split(weight)}")
        elif isinstance(item, PauseStep):
            if item.pause is None:
                add("gate", f"manual gate at {weight}%: wait for `shipyard promote` (judgement keeps running)")
            else:
                bake(item.pause, "pause")
        elif isinstance(item, AnalysisStep):
            name = item.analysis
            tmpl = spec.analysis.get(name)
            seconds = tmpl.duration if tmpl is not None and tmpl.duration is not None else dur
            conds = conditions_from_spec(tmpl) if tmpl is not None else ()
            extra = "".join(f"; {c.describe()}" for c in conds)
            add("analysis", f"analysis {name!r} for {format_duration(seconds)} at {weight}%: judge canary vs "
                f"stable{extra}", duration=seconds, analysis=name, conditions=conds)
    weight = 100
    add("promote", "promote: the canary takes 100% and becomes stable; the old release is drained")
    return steps


@dataclass(frozen=True)
class CanaryDecision:
    action: Action
    reason: str
    verdict: Verdict | None = None
    firing: tuple[Evaluation, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "reason": self.reason,
            "verdict": self.verdict.to_json() if self.verdict else None,
            "firing": [e.to_json() for e in self.firing],
        }


def decide(
    step: CanaryStep,
    *,
    elapsed: float,
    verdict: Verdict | None,
    firing: Sequence[Evaluation] = (),
    command: Command | None = None,
    paused: bool = False,
    inconclusive_limit: float = 120.0,
) -> CanaryDecision:
    """What to do now, ``elapsed`` seconds into ``step``.

    ``verdict``: the latest judgement of the canary over the current step's window (None: not judged).
    ``firing``: triggers firing on the canary (rollback triggers, and an analysis step's conditions).
    ``paused``: the operator paused the rollout, or an earlier decision paused it for a human; only a
    rollback or a promote command gets out of it (``shipyard resume`` clears it in the executor).
    """
    if command == "abort":
        return CanaryDecision("rollback", "aborted by the operator", verdict, tuple(firing))
    if firing:
        reasons = "; ".join(_where(e) + e.reason for e in firing)
        return CanaryDecision("rollback", f"rollback trigger fired: {reasons}", verdict, tuple(firing))
    if verdict is not None and verdict.outcome == "fail":
        return CanaryDecision("rollback", f"canary judged worse than stable: {verdict.reason}", verdict)
    if command == "promote_full":
        return CanaryDecision("promote", "promoted by the operator (remaining steps skipped)", verdict)
    if step.kind == "weight":
        return CanaryDecision("continue", step.description, verdict)
    if step.kind == "promote":
        return CanaryDecision("promote", "all steps passed", verdict)
    if command == "promote":
        return CanaryDecision("continue", f"step {step.index + 1} ({step.kind}) ended by the operator", verdict)
    if paused:
        judged_now = verdict.reason if verdict is not None else "not judged yet"
        return CanaryDecision("wait", f"paused at {step.weight}% (`shipyard resume` or `shipyard promote` to go on, "
                        f"`shipyard abort` to roll back): {judged_now}", verdict)
    if step.kind == "gate":
        return CanaryDecision("wait", f"manual gate at {step.weight}%: waiting for `shipyard promote`", verdict)
    duration = step.duration or 0.0
    judged = verdict.reason if verdict is not None else "not judged yet"
    if elapsed < duration:
        return CanaryDecision("wait", f"{step.kind} {format_duration(elapsed)} of {format_duration(duration)} at "
                        f"{step.weight}%: {judged}", verdict)
    if verdict is not None and verdict.outcome == "pass":
        return CanaryDecision("continue", f"canary passed at {step.weight}%: {verdict.reason}", verdict)
    over = elapsed - duration
    if over >= inconclusive_limit:
        return CanaryDecision("pause", f"still inconclusive {format_duration(over)} after the {step.kind} at "
                        f"{step.weight}% ended ({judged}); pausing for a human: `shipyard promote` to go on, "
                        "`shipyard abort` to roll back", verdict)
    return CanaryDecision("wait", f"inconclusive at {step.weight}%, waiting for more traffic "
                    f"(up to {format_duration(inconclusive_limit)}): {judged}", verdict)


def _where(e: Evaluation) -> str:
    if e.instance:
        return f"[{e.release}/{e.instance}] "
    return f"[{e.release}] " if e.release else ""


def canary_triggers(spec: CanarySpec, rollback: RollbackSpec | None) -> tuple[Condition, ...]:
    """What is checked on the canary every second besides the judgement: the rollback triggers and the
    crash check (more than ``max_restarts`` restarts of a canary instance)."""
    return (*conditions_from_spec(rollback), Condition("restarts", float(spec.max_restarts + 1), "at_least"))


def plan_lines(spec: CanarySpec, rollback: RollbackSpec | None) -> list[str]:
    """What ``--plan`` shows for a canary: the steps, the judgement and every trigger with its threshold."""
    lines = [f"{s.index + 1}. {s.description}" for s in expand(spec)]
    lines.append(describe_settings(JudgementSettings.from_spec(spec)))
    lines.append(f"inconclusive for {format_duration(spec.inconclusive_limit)} past a step: pause for a human")
    lines.append(f"crash check: a canary instance restarting more than {spec.max_restarts} time(s) rolls back")
    triggers = conditions_from_spec(rollback)
    if triggers:
        lines.append("rollback triggers (during the rollout and the post-deploy watch):")
        lines += [f"  - {c.describe()}" for c in triggers]
    else:
        lines.append("rollback triggers: none ([rollback] not set)")
    return lines
