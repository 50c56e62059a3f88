"""Deploy and rollback: gather → prepare (pure) → apply the very plan → record.

One request loads shipyard.toml once (the API handler does, through ``SpecSource``) and hands the
snapshot down; the plan carries everything the apply needs. ``--plan`` stops after ``prepare``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from shipyard.control.deploys.inputs import DeployRequest, InputGatherer
from shipyard.control.deploys.recording import (
    StoreRecorder,
    deployment_detail,
    lifecycle_notice,
    progress_event,
    result_doc,
)
from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.runners import BackupRun, LocalRunners
from shipyard.control.deploys.watch import WatchService
from shipyard.control.events import EventLog
from shipyard.control.logsetup import bind_deployment, new_trace_id
from shipyard.control.notify import LifecycleHook
from shipyard.control.paths import Paths
from shipyard.control.releases import ReleaseService
from shipyard.control.specsource import SpecSource
from shipyard.control.target import LocalTarget, Targets
from shipyard.engine.rollout.canary_runner import CanaryRun, CanaryRunner
from shipyard.engine.rollout.executor import ExecResult, StepResult, execute
from shipyard.engine.rollout.plan import Plan, prepare
from shipyard.engine.rollout.steps import Step
from shipyard.engine.rollout.triggers import Triggers
from shipyard.errors import LockHeld, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import DeploymentRec, Store

log = logging.getLogger("shipyard.control")
Emit = Callable[[dict[str, Any]], None]


class DeployService:
    def __init__(self, *, specs: SpecSource, paths: Paths, store: Store, secrets: SecretStore, clock: Clock, events: EventLog,
                 targets: Targets, releases: ReleaseService, registry: Registry,
                 notify: LifecycleHook | None = None, backup_run: BackupRun | None = None) -> None:
        self.notify: LifecycleHook = notify or (lambda env, kind, summary, details: None)
        self.backup_run = backup_run  # backup.before_deploy: the control plane's recorded backup run
        self.specs, self.paths, self.store, self.secrets, self.clock = specs, paths, store, secrets, clock
        self.events, self.targets, self.releases, self.registry = events, targets, releases, registry
        self.inputs = InputGatherer(paths=paths, store=store, releases=releases, targets=targets, secrets=secrets,
                                    clock=clock)
        self.watches = WatchService(registry=registry, targets=targets, events=events, clock=clock,
                                    rollback=self._automatic_rollback)

    def prepare(self, req: DeployRequest, spec: Spec) -> Plan:
        return prepare(self.inputs.gather(req, spec))

    def check_port(self, plan: Plan) -> None:
        target = self.targets.get(plan.env)
        self.targets.link.check_port(plan.env, plan.router.port, ours=target.routing.port == plan.router.port)

    def check_window(self, plan: Plan, override_reason: str | None, performer: str = "local") -> None:
        """Refuse (exit 3) a deploy outside its windows or inside a freeze, unless overridden with a reason —
        which is recorded. Rollbacks are never held."""
        if plan.window.allowed:
            return
        if override_reason is None:
            raise Refused(plan.window.message(plan.env)
                          + " (`--override-window --reason TEXT` deploys anyway, and is recorded)")
        self.events.add(plan.env, "window_override", f"{plan.kind} of {plan.release} outside its window by "
                        f"{performer}: {override_reason} ({plan.window.reason})",
                        data={"performer": performer, "reason": override_reason})
        self.store.add_audit(self.clock.time(), performer, "window_override", plan.env, plan.release,
                             {"reason": override_reason, "window": plan.window.reason})

    def check_manual_lock(self, plan: Plan) -> None:
        """A held `shipyard lock` refuses deploys (exit 3) naming its holder and message; rollbacks pass."""
        held = self.store.manual_lock(plan.env) if plan.kind == "deploy" else None
        if held is not None:
            raise Refused(f"{plan.env} is locked by {held.holder}: {held.message!r} "
                          f"(`shipyard lock release --env {plan.env}` to deploy again)")

    def check_promotion(self, plan: Plan) -> None:
        """A release the environment's [promotion] does not take yet is refused (exit 3), saying why."""
        why = (plan.promotion or {}).get("refused")
        if why:
            raise Refused(str(why))

    def check_free(self, env: str) -> None:
        if self.registry.is_busy(env):
            running = self.store.running_deployment(env)
            what = f"deployment {running.id} ({running.kind} of {running.release})" if running else "a deployment"
            raise LockHeld(f"{what} is already running on {env}; wait for it or check 'shipyard status'")

    async def stream(self, plan: Plan, plan_only: bool, performer: str = "local") -> AsyncIterator[dict[str, Any]]:
        """The plan, then (unless ``plan_only``) the deployment's events until its result."""
        yield {"event": "plan", "plan": plan.to_json()}
        if plan_only:
            return
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def runner() -> None:
            try:
                result = await self.run(plan, queue.put_nowait, performer)
                queue.put_nowait({"event": "result", "result": result})
            except ShipyardError as err:
                queue.put_nowait({"event": "error", "error": str(err), "exit_code": err.exit_code})
            except Exception as exc:  # a bug must still end the stream with an answer
                log.exception("deployment crashed")
                queue.put_nowait({"event": "error",
                                  "error": f"internal error: {exc!r} (see .shipyard/logs/control.log)"})
            finally:
                self.registry.release(plan.env, task)
                queue.put_nowait(None)

        # The deployment runs on even if the CLI goes away.
        task = asyncio.get_running_loop().create_task(runner(), name=f"deploy-{plan.env}")
        self.registry.hold(plan.env, task, "a deployment")
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    async def run(self, plan: Plan, emit: Emit, performer: str = "local",
                  deployment: DeploymentRec | None = None) -> dict[str, Any]:
        """Apply ``plan``; returns the result document (see README for its fields). ``deployment``: an
        approved one already started (store.start_waiting took its lock), else a new one is begun."""
        t0 = time.monotonic()
        target = self.targets.get(plan.env)
        dep = deployment or self.store.begin_deployment(
            plan.env, kind=plan.kind, release=plan.release, previous_release=plan.previous,
            strategy=plan.strategy, plan=[s.to_json() for s in plan.steps], started_at=self.clock.time())
        self.store.add_audit(self.clock.time(), performer, plan.kind, plan.env, f"deployment {dep.id}",
                             {"release": plan.release, "previous_release": plan.previous})
        trace_id = new_trace_id()
        # Every line logged for this deployment (its task, the threads it starts) carries these ids.
        bind_deployment(dep.id, plan.env, plan.release, trace_id)
        emit({"event": "started", "deployment": dep.id, "env": plan.env, "release": plan.release,
              "previous_release": plan.previous, "kind": plan.kind, "trace_id": trace_id})
        log.info("%s of %s to %s started", plan.kind, plan.release, plan.env)
        self.notify(plan.env, *lifecycle_notice(plan, None, None, None))
        outcome, reason = "failed", None
        res: ExecResult | None = None

        def progress(what: str, item: StepResult | Step, index: int) -> None:
            emit(progress_event(what, item, index))

        try:
            self.watches.stop(plan.env)  # the release it watched is being replaced
            target.configure(plan.router, plan.release, plan.launch)
            with self.releases.protect(plan.release):
                async with self._canary(plan, target, emit) as canary:
                    runners = LocalRunners(plan, target, self.releases, self.paths, self.clock, self.secrets,
                                           emit, canary, dep.id, performer, self.backup_run)
                    recorder = StoreRecorder(self.store, dep.id)
                    res = await execute(plan.steps, target, runners, recorder, self.clock,
                                        serving=plan.previous, on_progress=progress)
                    if not res.ok and (res.committed or res.shifted) and plan.on_rollback:
                        # Rolled back (a canary judged bad, a verify no-go): the post_rollback hook runs too.
                        after = await execute(plan.on_rollback, target, runners, recorder, self.clock,
                                              serving=None, on_progress=progress, first_index=len(plan.steps))
                        res = replace(res, results=res.results + after.results,
                                      warnings=res.warnings + after.warnings)
            if res.ok:
                outcome, reason = "succeeded", plan.note
            else:
                outcome = "rolled_back" if res.committed or res.shifted else "failed"
                reason = res.reason
        except ShipyardError as err:
            reason = str(err)  # reported in the result document, with outcome failed
        except asyncio.CancelledError:
            outcome, reason = "interrupted", "control plane stopped during the deployment"
            raise
        finally:
            self.store.finish_deployment(dep.id, outcome=outcome, reason=reason, finished_at=self.clock.time(),
                                         detail=deployment_detail(plan, res, performer))
        if outcome != "interrupted":
            self.notify(plan.env, *lifecycle_notice(plan, outcome, reason, res))
        watch = None
        if outcome == "succeeded":
            self.events.add(plan.env, plan.kind, f"{plan.kind} of {plan.release} succeeded"
                            + (f" ({plan.note})" if plan.note else ""))
            self.releases.prune(plan.keep_releases, self.targets.serving_releases())
            if plan.watches:
                watch = self.watches.start(plan)
        else:
            self.events.add(plan.env, plan.kind, f"{plan.kind} of {plan.release} {outcome}: {reason}")
        return result_doc(plan, dep.id, outcome, reason, res, watch, time.monotonic() - t0)

    @contextlib.asynccontextmanager
    async def _canary(self, plan: Plan, target: LocalTarget, emit: Emit) -> AsyncIterator[CanaryRunner | None]:
        if plan.canary is None:
            yield None
            return
        assert plan.previous is not None
        run = CanaryRun(plan.env, plan.release, plan.previous, plan.canary.spec, plan.canary.steps, emit=emit)
        triggers = Triggers(plan.canary.triggers, self.clock)
        self.registry.add_canary(run)
        try:
            async with target.observe() as metrics:
                yield CanaryRunner(run, target, metrics, triggers, self.clock,
                                   lambda kind, message: self._canary_event(plan.env, kind, message))
        finally:
            triggers.cancel()
            self.registry.remove_canary(run)

    def _canary_event(self, env: str, kind: str, message: str) -> None:
        self.events.add(env, kind, message)
        if kind in ("canary_paused", "canary_waiting"):
            self.notify(env, kind, message, {})

    async def _automatic_rollback(self, env: str, to: str, note: str, trigger: dict[str, Any]) -> None:
        """The post-deploy watch's rollback: its own request, with its own spec snapshot."""
        if self.registry.is_busy(env):
            self.events.add(env, "watch_rollback", "a deployment is already running; the automatic rollback "
                            "is skipped")
            return
        try:
            spec = self.specs.load()
            plan = replace(self.prepare(DeployRequest("rollback", env, to=to), spec), note=note, trigger=trigger)
        except ShipyardError as err:
            self.events.add(env, "watch_rollback", f"automatic rollback impossible: {err}")
            return
        task = asyncio.current_task()
        assert task is not None
        self.registry.hold(env, task, "the post-deploy watch's rollback")
        try:
            with contextlib.suppress(ShipyardError):
                await self.run(plan, lambda ev: None, "the post-deploy watch")
        finally:
            self.registry.release(env, task)
