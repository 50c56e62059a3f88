"""The steps of a local deployment that are not infrastructure: the build, canary phases, verification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.control.paths import Paths
from shipyard.control.releases import ReleaseService
from shipyard.control.target import LocalTarget
from shipyard.engine.rollout.canary_runner import CanaryRunner
from shipyard.engine.rollout.plan import Plan
from shipyard.engine.rollout.steps import BuildStep, CanaryPhaseStep, VerifyStep
from shipyard.engine.verify.gate import verify_gate
from shipyard.errors import DeployFailed, NoGo
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.masking import spec_snapshot
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.spec.verify import VerifySpec


class LocalRunners:
    def __init__(self, plan: Plan, target: LocalTarget, releases: ReleaseService, paths: Paths, clock: Clock,
                 secrets: SecretStore, emit: Callable[[dict[str, Any]], None], canary: CanaryRunner | None) -> None:
        self.plan, self.target, self.releases, self.paths = plan, target, releases, paths
        self.clock, self.secrets, self.emit, self.canary_runner = clock, secrets, emit, canary

    async def build(self, step: BuildStep) -> dict[str, Any]:
        spec = self.plan.spec
        snapshot = {name: spec_snapshot(spec, name) for name in spec.environments}
        # Per-environment secrets versions are in each deployment's record; here the newest one.
        version = max((self.secrets.version(e) for e in spec.environments), default=0)
        await self.releases.build(step.release, step.ref, build_cmds=list(step.commands), shared=list(step.shared),
                                  snapshot=snapshot, secrets_version=version,
                                  on_output=lambda line: self.emit({"event": "log", "line": line}))
        return {"release": step.release}

    async def canary(self, step: CanaryPhaseStep) -> dict[str, Any]:
        if self.canary_runner is None:
            raise DeployFailed("internal error: canary step without a running canary")
        return await self.canary_runner.perform(step)

    async def verify(self, step: VerifyStep) -> dict[str, Any]:
        url = self.target.endpoint(step.release, step.preview)
        outcome = await verify_gate(url, self.plan.verify or VerifySpec(), env=self.plan.env,
                                    state_dir=self.paths.state, project_dir=self.paths.project, clock=self.clock)
        summary = outcome.summary()
        try:
            outcome.require_go()
        except NoGo as err:
            err.detail = {"verify": summary}  # the step's record keeps it
            raise
        return summary
