"""Step runners for executor tests: they hand each non-infrastructure step to the fake target."""

from __future__ import annotations

from typing import Any

from shipyard.engine.rollout.steps import BuildStep, CanaryPhaseStep, HookStep, ReleaseCommandStep, VerifyStep


class TargetRunners:
    def __init__(self, target: Any) -> None:
        self.target = target

    async def build(self, step: BuildStep) -> dict[str, Any]:
        return {"release": step.release}

    async def release_command(self, step: ReleaseCommandStep) -> dict[str, Any]:
        return {}

    async def hook(self, step: HookStep) -> dict[str, Any]:
        return {}

    async def canary(self, step: CanaryPhaseStep) -> dict[str, Any]:
        c = step.phase
        params = {"index": c.index, "kind": c.kind, "weight": c.weight, "duration": c.duration,
                  "release": step.release, "stable": step.stable}
        result: dict[str, Any] = await self.target.canary(params)
        return result

    async def backup(self, step: Any) -> dict[str, Any]:
        return {"sources": list(step.sources)}

    async def verify(self, step: VerifyStep) -> dict[str, Any]:
        result: dict[str, Any] = await self.target.verify(step.release, step.preview)
        return result
