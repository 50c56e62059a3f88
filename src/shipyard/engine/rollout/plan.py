"""The plan is a value: ``prepare`` turns a spec snapshot and what is known about an environment into
a frozen ``Plan``. Pure: no I/O, no clock. ``--plan`` renders the ``Plan``; applying runs exactly its
steps (the build included) with exactly its settings — the spec is never read again for it.

The caller (the control plane) gathers ``PlanInputs`` — it loads shipyard.toml once per request, reads
the environment's state, the release index, the history and the commits between two releases — and
calls ``prepare``. Bad requests (unknown strategy, nothing to roll back to) raise ``BadInput`` here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.engine.analysis.conditions import Condition, conditions_from_spec
from shipyard.engine.rollout.canary import CanaryStep, canary_triggers, expand, plan_lines
from shipyard.engine.rollout.launch import Launch, web_replicas
from shipyard.engine.rollout.promotion import ServiceRecord, refusal
from shipyard.engine.rollout.state import EnvState
from shipyard.engine.rollout.steps import (
    BackupStep,
    BuildStep,
    CanaryPhaseStep,
    HookStep,
    ReleaseCommandStep,
    Step,
)
from shipyard.engine.rollout.strategies import RolloutSettings, WorkerSettings, plan_deploy, plan_rollback
from shipyard.engine.rollout.windows import WindowVerdict
from shipyard.engine.rollout.windows import check as check_window
from shipyard.errors import BadInput
from shipyard.primitives.spec.approval import ApprovalSpec
from shipyard.primitives.spec.diff import diff_config
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.masking import spec_snapshot
from shipyard.primitives.spec.models import EnvSpec, Spec
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec
from shipyard.primitives.spec.router import RouterEnvSpec, StickySpec
from shipyard.primitives.spec.verify import VerifySpec

Kind = Literal["deploy", "rollback"]
STRATEGIES = ("rolling", "blue-green", "canary")
# Rough first-time estimates (seconds) per step kind, replaced by this environment's history.
DEFAULT_ESTIMATE = {"build": 2.0, "release_command": 5.0, "hook": 1.0, "start": 0.3, "wait_ready": 3.0, "route": 0.01, "unroute": 0.01, "drain": 0.5,
                    "stop": 1.0, "keep_warm": 0.01, "verify": 60.0}


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    short: str = ""
    message: str = ""
    author: str = ""
    committed_at: float = 0.0

    def to_json(self) -> dict[str, str]:
        return {"sha": self.sha, "short": self.short or self.sha[:12], "message": self.message,
                "author": self.author}


@dataclass(frozen=True)
class ReleaseChoice:
    """The release a deployment goes to: an existing one, or a new id built from ``commit``."""

    id: str
    commit: CommitInfo
    build: bool = False
    ref: str | None = None


@dataclass(frozen=True)
class History:
    """What this environment's past deployments tell the plan."""

    config: Mapping[str, Any] | None = None  # the last succeeded deployment's config snapshot
    secrets: Mapping[str, Any] | None = None  # its secrets names and version
    launches: Mapping[str, Launch] = field(default_factory=dict)  # how each release was last launched here
    durations: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # step kind → recent durations
    build_estimate: float = DEFAULT_ESTIMATE["build"]


@dataclass(frozen=True)
class SecretsInfo:
    names: tuple[str, ...] = ()
    version: int = 0


@dataclass(frozen=True)
class PlanInputs:
    kind: Kind
    env: str
    spec: Spec
    state: EnvState
    release: ReleaseChoice
    history: History = History()
    secrets: SecretsInfo = SecretsInfo()
    commits: tuple[CommitInfo, ...] | None = None  # between the serving release and the target, newest first
    strategy: str | None = None  # --strategy
    now: float | None = None  # wall time of the request (deploy windows); None: windows not judged
    promote_from: str | None = None  # --from ENV: the release serving there
    source: ServiceRecord | None = None  # the release's record in [promotion] from (None: no policy)
    source_secrets: tuple[str, ...] = ()  # secret names of the environment promoted from


@dataclass(frozen=True)
class RouterPlan:
    port: int
    settings: RouterEnvSpec
    sticky: StickySpec | None


@dataclass(frozen=True)
class CanaryPlan:
    spec: CanarySpec
    steps: tuple[CanaryStep, ...]  # expanded once; the plan's canary steps carry these very objects
    rollback: RollbackSpec | None
    triggers: tuple[Condition, ...]  # checked on the canary every second: rollback triggers + crash check


@dataclass(frozen=True)
class Plan:
    kind: Kind
    env: str
    strategy: str
    release: str
    previous: str | None
    steps: tuple[Step, ...]
    settings: RolloutSettings
    launch: Launch
    router: RouterPlan
    commit: CommitInfo
    changes: Mapping[str, Any]
    estimates: tuple[float, ...]
    spec: Spec  # the snapshot the plan was made from (the release record keeps every environment's part)
    triggers: tuple[Condition, ...] = ()  # rollback triggers (rollout and post-deploy watch)
    canary: CanaryPlan | None = None
    verify: VerifySpec | None = None
    watch_s: float = 0.0
    keep_releases: int = 5  # the fewest any environment keeps: pruning after the deploy uses it
    warm_switch: bool = False
    build: BuildStep | None = None
    on_rollback: tuple[HookStep, ...] = ()  # a deploy that ends rolled back runs these (post_rollback)
    window: WindowVerdict = WindowVerdict(True)  # may a deploy start now (rollbacks are never held)
    promotion: Mapping[str, Any] | None = None  # from where, why refused, what differs between the two
    note: str | None = None  # why this deployment happens when nobody asked (automatic rollback)
    approval: ApprovalSpec | None = None  # a deploy waits for approvals before its first step (never a rollback)
    trigger: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``deploy --plan --json`` prints (and the live view's first event)."""
        steps = [{"name": s.kind, "kind": s.kind, "description": s.description, "params": s.params,
                  "estimate_s": e} for s, e in zip(self.steps, self.estimates, strict=True)]
        launch = self.launch
        gates: dict[str, Any] = {"health": _probe_json(launch.health)}
        if launch.ready:
            gates["ready"] = {"path": launch.ready.path}
        gates["deploy_timeout_s"] = self.settings.deploy_timeout
        out: dict[str, Any] = {
            "kind": self.kind, "env": self.env, "strategy": self.strategy, "release": self.release,
            "previous_release": self.previous, "build": self.build is not None, "commit": self.commit.to_json(),
            "warm_switch": self.warm_switch, "steps": steps,
            "estimated_duration_s": round(sum(self.estimates), 2), "health_gates": gates,
            "changes": {k: v for k, v in self.changes.items() if k != "config"},
        }
        out["processes"] = {name: {"replicas": self.settings.replicas if name == "web" else p.replicas,
                                   "routed": name == "web", "stop": {"signal": p.stop_signal, "grace_s": p.stop_grace},
                                   **({"check": p.check} if p.check else {}),
                                   **({"limits": p.limits.to_json()} if p.limits else {})}
                            for name, p in [("web", launch.of("web")), *sorted(launch.processes.items())]}
        if self.canary is not None and any(isinstance(s, CanaryPhaseStep) for s in self.steps):
            out["canary"] = {"lines": plan_lines(self.canary.spec, self.canary.rollback),
                             "steps": [c.to_json() for c in self.canary.steps]}
        out["rollback_triggers"] = [c.describe() for c in self.triggers]
        if self.promotion is not None:
            out["promotion"] = dict(self.promotion)
        if self.approval is not None:
            out["approval"] = self.approval.to_json()
        if not self.window.allowed:
            out["window"] = {"allowed": False, "reason": self.window.reason,
                             "next_open": self.window.next_open.isoformat() if self.window.next_open else None}
        if self.watches:
            out["watch"] = (f"after the deploy, watch {self.release} for {format_duration(self.watch_s)}; "
                            f"a trigger firing rolls back to {self.previous or 'the previous release'}")
        return out

    @property
    def watches(self) -> bool:
        """Whether a successful deploy starts the post-deploy watch."""
        return (self.kind == "deploy" and bool(self.triggers) and self.watch_s > 0 and self.previous is not None
                and self.previous != self.release)


def _probe_json(p: Any) -> dict[str, Any]:
    return {"path": p.path, "interval_s": p.interval, "timeout_s": p.timeout, "retries": p.retries,
            "start_period_s": p.start_period}


def settings_for(envspec: EnvSpec, canary_steps: tuple[CanaryStep, ...] = (),
                 launch: Launch | None = None) -> RolloutSettings:
    """The environment's settings; the other process types as ``launch`` (the release deployed) runs them."""
    verify = envspec.verify
    workers = tuple(WorkerSettings(name, p.replicas, p.stop_grace, p.surge)
                    for name, p in (launch.processes if launch else {}).items())
    return RolloutSettings(replicas=web_replicas(envspec), max_surge=envspec.max_surge, workers=workers,
                           max_unavailable=envspec.max_unavailable, drain_timeout=envspec.drain_timeout,
                           scale_down_delay=envspec.scale_down_delay, deploy_timeout=envspec.deploy_timeout,
                           verify=verify is not None, verify_before_switch=bool(verify and verify.before_switch),
                           canary_steps=canary_steps)


def prepare(inputs: PlanInputs) -> Plan:
    spec, env = inputs.spec, inputs.env
    envspec = spec.env(env)
    state, target = inputs.state, inputs.release.id
    canary_spec = envspec.canary or CanarySpec()
    expanded = tuple(expand(canary_spec))
    warm = False
    if inputs.kind == "deploy":
        strategy = inputs.strategy or envspec.strategy
        if strategy not in STRATEGIES:
            raise BadInput(f"unknown strategy '{strategy}' (expected rolling, blue-green or canary)")
        launch = Launch.from_spec(spec, env)
        settings = settings_for(envspec, expanded if strategy == "canary" else (), launch)
        steps: list[Step] = plan_deploy(strategy, settings, state, target)
    else:
        strategy = "blue-green"
        launch = inputs.history.launches.get(target) or Launch.from_spec(spec, env)
        settings = settings_for(envspec, launch=launch)
        steps, warm = plan_rollback(settings, state, target)
    build = None
    before: list[Step] = []
    if inputs.kind == "deploy":
        if envspec.backup is not None and envspec.backup.before_deploy and envspec.backup.sources:
            names = tuple(src.name for src in envspec.backup.sources)
            before.append(BackupStep(description=f"back up {', '.join(names)} before deploying (a failure stops "
                                     "the deploy; the serving release stays)", env=env, sources=names))
        if inputs.release.build:
            before += _hook(spec, "pre_build", target)
            build = BuildStep(description=f"build release {target} from {inputs.release.commit.to_json()['short']}",
                              release=target, ref=inputs.release.ref or "HEAD", sha=inputs.release.commit.sha,
                              commands=tuple(spec.app.build), shared=tuple(spec.app.shared))
            before.append(build)
        release_cmds = envspec.release if envspec.release is not None else spec.app.release
        if release_cmds:
            before.append(ReleaseCommandStep(
                description=f"run the release command in {target} with {env}'s configuration: "
                + "; ".join(release_cmds), release=target, commands=tuple(release_cmds),
                timeout=spec.app.release_timeout))
        before += _hook(spec, "pre_deploy", target)
        steps += _hook(spec, "post_deploy", target)
    else:
        steps += _hook(spec, "post_rollback", target)
    steps[:0] = before
    canary = None
    if any(isinstance(s, CanaryPhaseStep) for s in steps):
        canary = CanaryPlan(canary_spec, expanded, envspec.rollback, canary_triggers(canary_spec, envspec.rollback))
    return Plan(
        kind=inputs.kind, env=env, strategy=strategy, release=target, previous=state.current_release,
        steps=tuple(steps), settings=settings, launch=launch,
        router=RouterPlan(envspec.port, envspec.router, envspec.router.sticky),
        commit=inputs.release.commit, changes=describe_changes(inputs, spec_snapshot(spec, env)),
        estimates=estimate(inputs.history, steps), spec=spec, triggers=conditions_from_spec(envspec.rollback),
        canary=canary, verify=envspec.verify, watch_s=float(envspec.watch),
        keep_releases=min(e.keep_releases for e in spec.environments.values()), warm_switch=warm, build=build,
        on_rollback=tuple(_hook(spec, "post_rollback", target)) if inputs.kind == "deploy" else (),
        window=check_window(envspec.windows, inputs.now) if inputs.kind == "deploy" and inputs.now is not None
        else WindowVerdict(True), promotion=_promotion(inputs, envspec) if inputs.kind == "deploy" else None,
        approval=envspec.approval if inputs.kind == "deploy" else None)


def _promotion(inputs: PlanInputs, envspec: EnvSpec) -> dict[str, Any] | None:
    policy, source = envspec.promotion, inputs.promote_from
    if policy is None and source is None:
        return None
    src = source or (policy.from_ if policy is not None else "")
    why = None
    if policy is not None and inputs.source is not None:
        why = refusal(inputs.env, inputs.release.id, policy, inputs.source, inputs.now or 0.0)
    out: dict[str, Any] = {"from": src, "refused": why}
    if src in inputs.spec.environments:
        here = {k: v for k, v in spec_snapshot(inputs.spec, inputs.env)["environment"].items() if k != "name"}
        there = {k: v for k, v in spec_snapshot(inputs.spec, src)["environment"].items() if k != "name"}
        out["config_differs"] = diff_config(there, here)
        mine, theirs = set(inputs.secrets.names), set(inputs.source_secrets)
        out["secrets"] = {"only_here": sorted(mine - theirs), "only_there": sorted(theirs - mine)}
    return out


def _hook(spec: Spec, hook: str, release: str) -> list[HookStep]:
    cmds = spec.hooks.of(hook)
    if not cmds:
        return []
    may_fail = hook in ("post_deploy", "post_rollback")
    return [HookStep(description=f"{hook} hook: " + "; ".join(cmds)
                     + (" (a failure is reported, nothing is undone)" if may_fail else " (a failure aborts)"),
                     hook=hook, release=release, commands=tuple(cmds), timeout=spec.hooks.timeout,
                     may_fail=may_fail)]


def estimate(history: History, steps: list[Step]) -> tuple[float, ...]:
    out: list[float] = []
    for s in steps:
        if s.kind == "build":
            out.append(history.build_estimate)
        elif history.durations.get(s.kind):
            out.append(round(statistics.median(history.durations[s.kind]), 3))
        else:
            out.append(DEFAULT_ESTIMATE.get(s.kind, 1.0))
    return tuple(out)


def describe_changes(inputs: PlanInputs, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Release A → B with the commits between them, config keys changed, secrets changed by name."""
    out: dict[str, Any] = {"release": {"from": inputs.state.current_release, "to": inputs.release.id}}
    if inputs.commits is not None:
        out["commits"] = [{"sha": c.short or c.sha[:12], "message": c.message, "author": c.author}
                          for c in inputs.commits]
    old_config = inputs.history.config
    out["config_changed"] = diff_config(old_config, snapshot) if old_config else []
    names = sorted(inputs.secrets.names)
    old = inputs.history.secrets
    if old is not None:
        changed = sorted(set(names) ^ set(old.get("names", [])))
        if old.get("version") != inputs.secrets.version and not changed:
            changed = ["(values changed: " + ", ".join(names) + ")"] if names else []
        out["secrets_changed"] = changed
    else:
        out["secrets_changed"] = names
    out["config"] = dict(snapshot)
    out["secrets"] = {"names": names, "version": inputs.secrets.version}
    return out
