"""The post-deploy watch, pure: after promotion the rollback triggers keep running for ``watch``.

The control plane evaluates the triggers on the new release about once a second
(``conditions.evaluate_all(..., releases=[new])`` plus ``evaluate_prometheus`` per PromQL condition) and
asks ``decide_watch`` what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shipyard.engine.analysis.conditions import Evaluation
from shipyard.primitives.spec.durations import format_duration

WatchAction = Literal["watching", "rollback", "done"]


@dataclass(frozen=True)
class WatchDecision:
    action: WatchAction
    reason: str
    firing: tuple[Evaluation, ...] = ()


def decide_watch(*, elapsed: float, watch: float, firing: Sequence[Evaluation]) -> WatchDecision:
    """``elapsed`` seconds since promotion; a trigger firing at any time within ``watch`` rolls back."""
    if firing and elapsed <= watch:
        reasons = "; ".join(
            (f"[{e.release}/{e.instance}] " if e.instance else f"[{e.release}] " if e.release else "") + e.reason
            for e in firing
        )
        return WatchDecision(
            "rollback",
            f"rollback trigger fired {format_duration(elapsed)} after promotion: {reasons}",
            tuple(firing),
        )
    if elapsed >= watch:
        return WatchDecision("done", f"watched for {format_duration(watch)}: no trigger fired")
    return WatchDecision("watching", f"watching: {format_duration(elapsed)} of {format_duration(watch)}")
