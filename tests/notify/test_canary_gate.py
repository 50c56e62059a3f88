"""A canary at a manual gate says once that it waits for a human (the `canary_waiting` notification)."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.engine.rollout.canary import CanaryStep
from shipyard.engine.rollout.canary_runner import CanaryRun, CanaryRunner
from shipyard.engine.rollout.steps import CanaryPhaseStep
from shipyard.engine.rollout.triggers import Triggers
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.rollout import CanarySpec


class Ticks:
    """A metric source with no samples whose fourth tick brings the operator's `promote`."""

    end = None

    def __init__(self, run: CanaryRun) -> None:
        self.run, self.ticks = run, 0

    async def next_tick(self, timeout: float = 3.0) -> bool:
        self.ticks += 1
        if self.ticks == 4:
            self.run.command = "promote"
        return True

    def since(self, t: int) -> Any:
        return iter(())


def test_a_manual_gate_announces_its_wait_once() -> None:
    gate = CanaryStep(1, "gate", 20, "manual gate at 20%")
    run = CanaryRun("prod", "r2", "r1", CanarySpec(), steps=(gate,), weight=20, first_sec=100)
    said: list[tuple[str, str]] = []
    clock = ManualClock()
    runner = CanaryRunner(run, None, Ticks(run), Triggers((), clock), clock,  # type: ignore[arg-type]
                          lambda kind, msg: said.append((kind, msg)))
    out = asyncio.run(runner.perform(CanaryPhaseStep(phase=gate, description="gate", release="r2", stable="r1")))
    assert "ended by the operator" in out["reason"]
    assert said == [("canary_waiting", "manual gate at 20%: waiting for `shipyard promote`")]
