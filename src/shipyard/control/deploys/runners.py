"""The steps of a local deployment that are not infrastructure: the build, canary phases, verification."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shipyard.control.deploys.commands import release_environment, run_commands
from shipyard.control.paths import Paths
from shipyard.control.releases import ReleaseService
from shipyard.control.target import LocalTarget
from shipyard.engine.backup import RunResult
from shipyard.engine.rollout.canary_runner import CanaryRunner
from shipyard.engine.rollout.plan import Plan
from shipyard.engine.rollout.steps import (
    BackupStep,
    BuildStep,
    CanaryPhaseStep,
    HookStep,
    ReleaseCommandStep,
    VerifyStep,
)
from shipyard.engine.verify.gate import verify_gate
from shipyard.errors import DeployFailed, NoGo
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.masking import spec_snapshot
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.spec.verify import VerifySpec

# The control plane's recorded backup run (BackupService.run), handed in by the wiring.
BackupRun = Callable[[str], Awaitable[tuple[list[RunResult], list[str]]]]


class LocalRunners:
    def __init__(self, plan: Plan, target: LocalTarget, releases: ReleaseService, paths: Paths, clock: Clock,
                 secrets: SecretStore, emit: Callable[[dict[str, Any]], None], canary: CanaryRunner | None,
                 deployment: int, performer: str = "local", backups: BackupRun | None = None) -> None:
        self.plan, self.target, self.releases, self.paths = plan, target, releases, paths
        self.clock, self.secrets, self.emit, self.canary_runner = clock, secrets, emit, canary
        self.deployment, self.performer, self.backups = deployment, performer, backups

    async def backup(self, step: BackupStep) -> dict[str, Any]:
        """``before_deploy``: the same recorded run as ``shipyard backup run``; any failed source fails it."""
        if self.backups is None:
            raise DeployFailed("internal error: a backup step without the backup service")
        results, _ = await self.backups(step.env)
        summary = {"backups": [{"source": r.source, "ok": r.ok, "backup_id": r.backup_id, "error": r.error}
                               for r in results]}
        failed = [r for r in results if not r.ok]
        if failed:
            err = DeployFailed(f"backup before deploy failed for {failed[0].source!r}: {failed[0].error or 'copy failed'}"
                               " — nothing was deployed")
            err.detail = summary
            raise err
        return summary

    async def build(self, step: BuildStep) -> dict[str, Any]:
        spec = self.plan.spec
        snapshot = {name: spec_snapshot(spec, name) for name in spec.environments}
        # Per-environment secrets versions are in each deployment's record; here the newest one.
        version = max((self.secrets.version(e) for e in spec.environments), default=0)
        await self.releases.build(step.release, step.ref, build_cmds=list(step.commands), shared=list(step.shared),
                                  snapshot=snapshot, secrets_version=version,
                                  on_output=lambda line: self.emit({"event": "log", "line": line}))
        return {"release": step.release}

    async def release_command(self, step: ReleaseCommandStep) -> dict[str, Any]:
        log = self.paths.state / "logs" / self.plan.env / f"deploy-{self.deployment}-release.log"
        cwd = await self.target.instances.workdir(self.plan.env, step.release)
        tail = await run_commands("release command", step.commands, cwd=cwd,
                                  env=self._environment(step.release, cwd), timeout=step.timeout, log_path=log,
                                  on_line=self._line)
        return {"output_tail": tail, "log": str(log)}

    async def hook(self, step: HookStep) -> dict[str, Any]:
        plan = self.plan
        log = self.paths.state / "logs" / plan.env / f"deploy-{self.deployment}-{step.hook}.log"
        cwd = await self.target.instances.workdir(plan.env, step.release)
        env = self._environment(step.release, cwd)
        # Hooks may call shipyard itself (read-only commands): its own bin dir last, so the release's tools win.
        env["PATH"] = f"{env.get('PATH', '')}{os.pathsep}{Path(sys.executable).parent}"
        env = {**env,
               "SHIPYARD_PREVIOUS_RELEASE": plan.previous or "", "SHIPYARD_STRATEGY": plan.strategy,
               "SHIPYARD_DEPLOYMENT": str(self.deployment), "SHIPYARD_PERFORMER": self.performer,
               "SHIPYARD_KIND": plan.kind}
        tail = await run_commands(f"{step.hook} hook", step.commands, cwd=cwd,
                                  env=env, timeout=step.timeout, log_path=log, on_line=self._line)
        return {"output_tail": tail, "log": str(log)}

    def _environment(self, release: str, cwd: Path) -> dict[str, str]:
        return release_environment(self.target.instances, self.plan.env, self.plan.launch, release, cwd)

    def _line(self, line: str) -> None:
        self.emit({"event": "log", "line": line})

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
