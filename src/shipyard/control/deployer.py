"""Deploy and rollback: build → plan → (apply) → record.

``prepare`` does everything a plan needs and changes nothing; ``--plan`` stops there and renders it,
a real deploy takes the lock and hands the same steps to the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.control.canary import canary_session, start_run
from shipyard.control.launch import Launch
from shipyard.control.runtime import LocalTarget
from shipyard.control.watch import start_watch, stop_watch
from shipyard.engine.rollout.executor import ExecResult, StepResult, execute
from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.engine.rollout.steps import Step
from shipyard.engine.rollout.strategies import Settings, plan_deploy, plan_rollback
from shipyard.errors import BadInput, NotFound, ShipyardError

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon

log = logging.getLogger("shipyard.control")

# Rough first-time estimates (seconds) per step kind, replaced by this environment's history.
_DEFAULT_ESTIMATE = {"start": 0.3, "wait_ready": 3.0, "route": 0.01, "unroute": 0.01, "drain": 0.5,
                     "stop": 1.0, "keep_warm": 0.01, "verify": 60.0}


@dataclass
class Prepared:
    kind: str  # deploy | rollback
    env: str
    strategy: str
    release: str  # target release id (may not be built yet)
    previous: str | None
    steps: list[Step]
    commit: dict[str, Any] | None = None
    needs_build: bool = False
    ref: str | None = None
    launch: Launch | None = None
    warm_switch: bool = False
    changes: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # why this deployment happens when it was not asked for (automatic rollback)
    trigger: dict[str, Any] | None = None


def env_state(d: Daemon, env: str) -> EnvState:
    rec = d.store.get_environment(env)
    rt = d.runtime(env)
    insts = tuple(InstanceView(s.id, s.release, bool(s.ready) and s.id not in rt.unrouted,
                               rt.roles.get(s.release, "stable")) for s in rt.instances())
    return EnvState(env=env, current_release=rec.current_release if rec else None,
                    previous_release=rec.previous_release if rec else None, instances=insts,
                    weights=dict(rt.weights))


def settings_for(envspec: Any, strategy: str | None = None) -> Settings:
    from shipyard.engine.rollout.canary import expand
    from shipyard.primitives.spec.rollout import CanarySpec

    verify = getattr(envspec, "verify", None)
    canary_steps = tuple(expand(envspec.canary or CanarySpec())) if strategy == "canary" else ()
    return Settings(replicas=envspec.replicas, max_surge=envspec.max_surge,
                    max_unavailable=envspec.max_unavailable, drain_timeout=envspec.drain_timeout,
                    scale_down_delay=envspec.scale_down_delay, deploy_timeout=envspec.deploy_timeout,
                    verify=verify is not None and getattr(verify, "enabled", True),
                    verify_before_switch=bool(getattr(verify, "before_switch", False)),
                    canary_steps=canary_steps)


def prepare_deploy(d: Daemon, env: str, *, ref: str | None, release: str | None,
                   strategy: str | None) -> Prepared:
    from shipyard.engine.releases import resolve_ref

    spec = d.load_spec()
    envspec = spec.env(env)
    strategy = strategy or envspec.strategy
    if strategy not in ("rolling", "blue-green", "canary"):
        raise BadInput(f"unknown strategy '{strategy}' (expected rolling, blue-green or canary)")
    commit_info: dict[str, Any] | None = None
    needs_build = False
    if release:
        rec = d.store.get_release(release)
        if rec is None or rec.status != "ready":
            raise NotFound(f"release '{release}' not found (see 'shipyard releases')")
        target = release
        commit_info = {"sha": rec.commit, "message": rec.message}
    else:
        commit = resolve_ref(d.paths.project, ref or "HEAD")
        commit_info = {"sha": commit.sha, "short": commit.short, "message": commit.message,
                       "author": commit.author}
        existing = d.release_for_commit(commit.sha)
        if existing:
            target = existing
        else:
            target = d.new_release_id(commit)
            needs_build = True
    state = env_state(d, env)
    steps = plan_deploy(strategy, settings_for(envspec, strategy), state, target)
    prep = Prepared("deploy", env, strategy, target, state.current_release, steps, commit_info,
                    needs_build, ref or ("HEAD" if not release else None), Launch.from_spec(spec, env))
    prep.changes = describe_changes(d, prep, spec)
    return prep


def prepare_rollback(d: Daemon, env: str, *, to: str | None) -> Prepared:
    spec = d.load_spec()
    envspec = spec.env(env)
    state = env_state(d, env)
    if state.current_release is None:
        raise BadInput(f"nothing is deployed on {env} yet")
    target = to or state.previous_release or d.previous_succeeded(env, state.current_release)
    if not target:
        raise BadInput(f"no earlier release to roll back to on {env} (see 'shipyard history --env {env}')")
    rec = d.store.get_release(target)
    if rec is None:
        raise NotFound(f"release '{target}' not found (see 'shipyard releases')")
    if not d.release_dir(target).is_dir():
        raise BadInput(f"release {target} was pruned from disk; deploy it again with --ref {rec.commit[:12]}")
    steps, warm = plan_rollback(settings_for(envspec), state, target)
    launch = d.runtime(env).launch.get(target) or d.launch_of(env, target) or Launch.from_spec(spec, env)
    prep = Prepared("rollback", env, "blue-green", target, state.current_release, steps,
                    {"sha": rec.commit, "message": rec.message}, False, None, launch, warm)
    prep.changes = describe_changes(d, prep, spec)
    return prep


def describe_changes(d: Daemon, prep: Prepared, spec: Any) -> dict[str, Any]:
    from shipyard.engine.releases import commits_between
    from shipyard.primitives.spec.diff import diff_config
    from shipyard.primitives.spec.masking import spec_snapshot

    out: dict[str, Any] = {"release": {"from": prep.previous, "to": prep.release}}
    prev_dep = d.last_succeeded(prep.env)
    old_sha = None
    if prep.previous:
        prev = d.store.get_release(prep.previous)
        old_sha = prev.commit if prev else None
    new_sha = (prep.commit or {}).get("sha")
    if old_sha and new_sha and old_sha != new_sha:
        try:
            out["commits"] = [{"sha": c.short, "message": c.message, "author": c.author}
                              for c in commits_between(d.paths.project, old_sha, new_sha)]
        except ShipyardError:
            out["commits"] = []
    snapshot = spec_snapshot(spec, prep.env)
    old_snapshot = (prev_dep.detail or {}).get("config") if prev_dep else None
    out["config_changed"] = diff_config(old_snapshot, snapshot) if old_snapshot else []
    secrets_version = d.secrets.version(prep.env)
    old_secrets = (prev_dep.detail or {}).get("secrets") if prev_dep else None
    names = sorted(d.secrets.names(prep.env))
    if old_secrets is not None:
        old_names = set(old_secrets.get("names", []))
        changed = sorted(set(names) ^ old_names)
        if old_secrets.get("version") != secrets_version and not changed:
            changed = ["(values changed: " + ", ".join(names) + ")"] if names else []
        out["secrets_changed"] = changed
    else:
        out["secrets_changed"] = names
    out["config"] = snapshot
    out["secrets"] = {"names": names, "version": secrets_version}
    return out


def estimate(d: Daemon, env: str, steps: list[Step]) -> list[float]:
    history: dict[str, list[float]] = {}
    for dep in d.store.list_deployments(env, limit=10):
        for st in d.store.list_steps(dep.id):
            if st.status == "succeeded" and st.duration_s is not None:
                history.setdefault(st.name, []).append(st.duration_s)
    return [round(statistics.median(history[s.kind]), 3) if s.kind in history
            else _DEFAULT_ESTIMATE.get(s.kind, 1.0) for s in steps]


def plan_json(d: Daemon, prep: Prepared) -> dict[str, Any]:
    envspec = d.load_spec().env(prep.env)
    est = estimate(d, prep.env, prep.steps)
    launch = prep.launch
    gates: dict[str, Any] = {}
    if launch:
        gates["health"] = {"path": launch.health.path, "interval_s": launch.health.interval,
                           "timeout_s": launch.health.timeout, "retries": launch.health.retries,
                           "start_period_s": launch.health.start_period}
        if launch.ready:
            gates["ready"] = {"path": launch.ready.path}
    gates["deploy_timeout_s"] = envspec.deploy_timeout
    steps: list[dict[str, Any]] = [{"name": s.kind, "description": s.description, "estimate_s": e} for s, e in zip(prep.steps, est,
                                                                                            strict=True)]
    if prep.needs_build:
        steps.insert(0, {"name": "build", "description": f"build release {prep.release} from "
                         f"{(prep.commit or {}).get('short', '?')}", "estimate_s": d.build_estimate()})
    changes = {k: v for k, v in prep.changes.items() if k not in ("config",)}
    out = {"kind": prep.kind, "env": prep.env, "strategy": prep.strategy, "release": prep.release,
           "previous_release": prep.previous, "build": prep.needs_build, "commit": prep.commit,
           "warm_switch": prep.warm_switch, "steps": steps,
           "estimated_duration_s": round(sum(float(s["estimate_s"]) for s in steps), 2),
           "health_gates": gates, "changes": changes}
    out.update(_analysis_plan(envspec, prep))
    return out


def _analysis_plan(envspec: Any, prep: Prepared) -> dict[str, Any]:
    """The canary's steps, judgement and every rollback trigger with its threshold, and the watch."""
    from shipyard.engine.analysis.conditions import conditions_from_spec
    from shipyard.engine.rollout.canary import plan_lines
    from shipyard.primitives.spec.durations import format_duration
    from shipyard.primitives.spec.rollout import CanarySpec

    out: dict[str, Any] = {}
    if any(s.kind == "canary" for s in prep.steps):
        spec = envspec.canary or CanarySpec()
        out["canary"] = {"lines": plan_lines(spec, envspec.rollback),
                         "steps": [c.to_json() for c in settings_for(envspec, "canary").canary_steps]}
    triggers = conditions_from_spec(envspec.rollback)
    out["rollback_triggers"] = [c.describe() for c in triggers]
    if prep.kind == "deploy" and triggers and envspec.watch > 0:
        out["watch"] = (f"after the deploy, watch {prep.release} for {format_duration(envspec.watch)}; "
                        f"a trigger firing rolls back to {prep.previous or 'the previous release'}")
    return out


class _Recorder:
    def __init__(self, d: Daemon, deployment_id: int) -> None:
        self.d = d
        self.dep = deployment_id

    def step_started(self, index: int, step: Step, at: float) -> int:
        return self.d.store.add_step(self.dep, index=index, name=step.kind, status="running", started_at=at,
                                     detail={"description": step.description})

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None:
        self.d.store.update_step(step_id, status=status, duration_s=duration_s, detail=detail)


async def run(d: Daemon, prep: Prepared, emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply a prepared deployment; returns the result document (see README for its fields)."""
    t0 = time.monotonic()
    clock = d.clock
    rt = d.runtime(prep.env)
    dep = d.store.begin_deployment(prep.env, kind=prep.kind, release=prep.release,
                                   previous_release=prep.previous, strategy=prep.strategy,
                                   plan=[s.to_json() for s in prep.steps], started_at=clock.time())
    emit({"event": "started", "deployment": dep.id, "env": prep.env, "release": prep.release,
          "previous_release": prep.previous, "kind": prep.kind})
    pre_results: list[StepResult] = []
    outcome, reason = "failed", None
    exec_result: ExecResult | None = None
    try:
        spec = d.load_spec()
        envspec = spec.env(prep.env)
        if prep.needs_build:
            pre_results.append(await _build_step(d, prep, dep.id, emit))
        d.prune_protect.add(prep.release)
        # The router must be able to listen on the environment's port before anything starts.
        rt.port = envspec.port
        rt.router_settings = d.router_settings(envspec)
        rt.sticky = envspec.router.table_sticky()
        reply = await d.router_call("set_table", table=rt.table())
        if not reply.get("ok"):
            raise BadInput(f"cannot serve {prep.env} on port {envspec.port}: {reply.get('error')}")
        assert prep.launch is not None
        rt.launch[prep.release] = prep.launch

        def progress(what: str, item: Any, index: int) -> None:
            step = item.step if isinstance(item, StepResult) else item
            ev: dict[str, Any] = {"event": "step", "status": what, "index": index + len(pre_results),
                                  "name": step.kind, "description": step.description}
            if isinstance(item, StepResult):
                ev["duration_s"] = round(item.duration_s, 3)
                if item.detail.get("error"):
                    ev["error"] = item.detail["error"]
            emit(ev)

        stop_watch(d, prep.env)  # the release it watched is being replaced
        async with contextlib.AsyncExitStack() as stack:
            if any(s.kind == "canary" for s in prep.steps):
                assert prep.previous is not None
                run_ = start_run(d, prep.env, prep.release, prep.previous, envspec, emit)
                await stack.enter_async_context(canary_session(d, run_))
            exec_result = await execute(prep.steps, LocalTarget(rt, d.verify_step), _Recorder(d, dep.id), clock,
                                        serving=prep.previous, on_progress=progress)
        if exec_result.ok:
            outcome = "succeeded"
            reason = prep.note
        else:
            outcome = "rolled_back" if exec_result.committed or exec_result.shifted else "failed"
            reason = exec_result.reason
    except ShipyardError as err:
        reason = str(err)  # reported in the result document, with outcome failed
    except asyncio.CancelledError:
        outcome, reason = "interrupted", "control plane stopped during the deployment"
        raise
    finally:
        detail = {"config": prep.changes.get("config"), "secrets": prep.changes.get("secrets"),
                  "launch": prep.launch.to_json() if prep.launch else None,
                  "commit": prep.commit, "trigger": prep.trigger, "rollback": _failure(exec_result)}
        d.store.finish_deployment(dep.id, outcome=outcome, reason=reason, finished_at=clock.time(),
                                  detail=detail)
        d.prune_protect.discard(prep.release)
    results = [*pre_results, *(exec_result.results if exec_result else ())]
    watch = None
    if outcome == "succeeded":
        d.event(prep.env, prep.kind, f"{prep.kind} of {prep.release} succeeded" + (f" ({prep.note})" if prep.note
                                                                                    else ""))
        d.prune_releases()
        if prep.kind == "deploy":
            w = start_watch(d, prep.env, prep.release, prep.previous, d.load_spec().env(prep.env))
            watch = w.to_json() if w else None
    else:
        d.event(prep.env, prep.kind, f"{prep.kind} of {prep.release} {outcome}: {reason}")
    return {"deployment": dep.id, "env": prep.env, "kind": prep.kind, "outcome": outcome,
            "release": prep.release, "previous_release": prep.previous, "reason": reason,
            "rollback": _failure(exec_result), "watch": watch,
            "duration_s": round(time.monotonic() - t0, 3),
            "steps": [{"name": r.step.kind, "description": r.step.description, "status": r.status,
                       "started_at": r.started_at, "duration_s": round(r.duration_s, 4)} for r in results]}


def _failure(res: ExecResult | None) -> dict[str, Any] | None:
    """The failed step's record when the deployment did not succeed: for a canary, the failing
    conditions with their observed values and windows."""
    if res is None or res.ok:
        return None
    for r in res.results:
        if r.status == "failed":
            return {"step": r.step.kind, "description": r.step.description, **r.detail}
    return None


async def _build_step(d: Daemon, prep: Prepared, dep_id: int, emit: Callable[[dict[str, Any]], None]) -> StepResult:
    t0, m0 = d.clock.time(), d.clock.monotonic()
    step = Step("build", f"build release {prep.release}")
    step_id = d.store.add_step(dep_id, index=-1, name="build", status="running", started_at=t0,
                               detail={"description": step.description})
    emit({"event": "step", "status": "started", "index": 0, "name": "build", "description": step.description})
    try:
        await d.build(prep.release, prep.ref or "HEAD", lambda line: emit({"event": "log", "line": line}))
    except ShipyardError as err:
        dur = d.clock.monotonic() - m0
        d.store.update_step(step_id, status="failed", duration_s=dur, detail={"error": str(err)})
        emit({"event": "step", "status": "failed", "index": 0, "name": "build", "description": step.description,
              "duration_s": round(dur, 3), "error": str(err)})
        raise
    dur = d.clock.monotonic() - m0
    d.store.update_step(step_id, status="succeeded", duration_s=dur, detail=None)
    emit({"event": "step", "status": "succeeded", "index": 0, "name": "build", "description": step.description,
          "duration_s": round(dur, 3)})
    return StepResult(-1, step, "succeeded", t0, dur)


async def stream(d: Daemon, make: Callable[[], Prepared], plan_only: bool) -> AsyncIterator[dict[str, Any]]:
    """Prepare (errors answered at once) then run in a task, streaming its events to the caller."""
    prep = make()
    if plan_only:
        yield {"event": "plan", "plan": plan_json(d, prep)}
        return
    d.check_not_busy(prep.env)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    yield {"event": "plan", "plan": plan_json(d, prep)}

    async def runner() -> None:
        try:
            result = await run(d, prep, queue.put_nowait)
            queue.put_nowait({"event": "result", "result": result})
        except ShipyardError as err:
            queue.put_nowait({"event": "error", "error": str(err), "exit_code": err.exit_code})
        except Exception as exc:  # a bug must still end the stream with an answer
            log.exception("deployment crashed")
            queue.put_nowait({"event": "error", "error": f"internal error: {exc!r} (see .shipyard/logs/control.log)"})
        finally:
            d.busy.pop(prep.env, None)
            queue.put_nowait(None)

    # The deployment runs on even if the CLI goes away.
    d.busy[prep.env] = asyncio.create_task(runner())
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item
