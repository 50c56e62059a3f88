"""Strategies: pure functions from (settings, current state, target release) to steps.

Nothing here performs I/O. The same functions back ``deploy --plan`` and the real deploy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shipyard.engine.rollout.canary import CanaryStep
from shipyard.engine.rollout.state import EnvState
from shipyard.engine.rollout.steps import (
    CanaryPhaseStep,
    DrainStep,
    KeepWarmStep,
    RouteStep,
    RoutingCommit,
    StartStep,
    Step,
    StopStep,
    UnrouteStep,
    VerifyStep,
    WaitReadyStep,
)
from shipyard.errors import BadInput
from shipyard.primitives.spec.durations import format_duration


@dataclass(frozen=True)
class RolloutSettings:
    """The environment settings strategies need (taken from the resolved spec)."""

    replicas: int
    max_surge: int = 1
    max_unavailable: int = 0
    drain_timeout: float = 30.0
    scale_down_delay: float = 300.0
    deploy_timeout: float = 300.0
    verify: bool = False
    verify_before_switch: bool = False
    canary_steps: tuple[CanaryStep, ...] = field(default=())  # expanded `canary` steps (canary strategy)
    workers: tuple[WorkerSettings, ...] = ()  # the process types other than web, of the release deployed


@dataclass(frozen=True)
class WorkerSettings:
    """A process type that is not routed: how many run, how long a stop lets running work finish."""

    process: str
    replicas: int
    grace: float
    surge: bool = True  # start the new ones before stopping the old (False: stop, then start)


def plan_deploy(strategy: str, s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    return with_workers(_plan_web(strategy, s, state, target), s, state, target)


def with_workers(steps: list[Step], s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    """The other process types follow the routed switch: the new release's workers start (and must be
    ready) just before the step that commits the switch, the old ones stop (with their own signal and
    grace, so running work finishes) just after it. Before the switch is final — a canary's phases, a
    blue-green preview — the old workers keep working; a deploy that fails there stops only new ones."""
    old_workers = state.workers(state.current_release, target)
    if not s.workers and not old_workers:
        return steps
    at = next(i for i, st in enumerate(steps) if isinstance(st, RouteStep) and st.commit is not None)
    before: list[Step] = []
    after: list[Step] = []
    settings = {w.process: w for w in s.workers}
    for proc in sorted({i.process for i in old_workers} | set(settings)):
        w = settings.get(proc)
        ids = tuple(i.id for i in old_workers if i.process == proc)
        grace = f" (grace {format_duration(w.grace)}: running work finishes)" if w else ""
        stop = [StopStep(description=f"stop {len(ids)} old {proc} instance(s){grace}", ids=ids)] if ids else []
        start: list[Step] = []
        if w is not None and w.replicas > 0:
            tag = f"{proc}-new"
            start = [StartStep(description=f"start {w.replicas} {proc} instance(s) of {target}", release=target,
                               count=w.replicas, tag=tag, role="stable", process=proc),
                     WaitReadyStep(description=f"wait until the {proc} instance(s) of {target} are up "
                                   f"(timeout {format_duration(s.deploy_timeout)})", tag=tag,
                                   timeout=s.deploy_timeout)]
        if w is not None and not w.surge:
            before += stop + start  # never two at once (a scheduler, a singleton consumer)
        else:
            before += start
            after += stop
    # A verification right after the switch can still send traffic back: the old workers stop once it passed.
    final = at + 1
    while final < len(steps) and isinstance(steps[final], VerifyStep):
        final += 1
    return [*steps[:at], *before, *steps[at:final], *after, *steps[final:]]


def _plan_web(strategy: str, s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    if strategy == "blue-green":
        if target == state.current_release:
            # Same release again (e.g. new secrets): there is no second pool to switch to.
            return plan_rolling(s, state, target)
        return plan_blue_green(s, state, target)
    if strategy == "rolling":
        return plan_rolling(s, state, target)
    if strategy == "canary":
        if state.current_release is None or not state.of_release(state.current_release):
            # Nothing serves yet: there is no stable release to compare with or fall back on.
            return plan_blue_green(s, state, target)
        if target == state.current_release:
            return plan_rolling(s, state, target)
        return plan_canary(s, state, target)
    raise BadInput(f"unknown strategy '{strategy}' (expected rolling, blue-green or canary)")


def _stop_strays(state: EnvState, keep: tuple[str | None, ...]) -> list[Step]:
    return [StopStep(description=f"stop the instances of {rel} (no longer needed)", release=rel)
            for rel in state.other_releases(*keep)]


def plan_blue_green(s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    old = state.current_release
    steps: list[Step] = []
    # Anything but the serving set goes first: releases kept warm from earlier deploys, and old
    # instances of the target itself (a fresh set starts with the current config).
    steps += _stop_strays(state, (old,))
    steps.append(StartStep(description=f"start {s.replicas} instance(s) of {target} beside the serving set",
                           release=target, count=s.replicas, tag="new", role="preview"))
    steps.append(WaitReadyStep(description=f"wait until all {s.replicas} instance(s) of {target} are ready "
                               f"(timeout {format_duration(s.deploy_timeout)})", tag="new", timeout=s.deploy_timeout))
    if s.verify and s.verify_before_switch:
        steps.append(VerifyStep(description=f"verify {target} under load before the switch", release=target,
                                preview=True))
    steps.append(RouteStep(description=f"switch 100% of traffic to {target}" + (f" (from {old})" if old else ""),
                           weights={target: 100}, commit=RoutingCommit(target, old)))
    if s.verify and not s.verify_before_switch:
        steps.append(VerifyStep(description=f"verify {target} under load", release=target))
    if old:
        steps += _retire_release(s, old)
    return steps


def _retire_release(s: RolloutSettings, old: str) -> list[Step]:
    return [DrainStep(description=f"drain {old}: in-flight requests finish "
                      f"(timeout {format_duration(s.drain_timeout)})", release=old, timeout=s.drain_timeout),
            KeepWarmStep(description=f"keep {old} warm for {format_duration(s.scale_down_delay)} "
                         "so a rollback is only a router switch", release=old, delay=s.scale_down_delay)]


def plan_canary(s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    """Canary beside stable; traffic moves step by step while the canary is judged (each ``canary``
    step is performed by the canary runner, which rolls back by failing the step); at 100% the canary
    becomes stable and the old set is drained and kept warm, as in blue-green."""
    old = state.current_release
    assert old is not None
    if not s.canary_steps:
        raise BadInput("canary strategy needs canary steps (environments.<env>.canary)")
    steps = _stop_strays(state, (old,))
    steps.append(StartStep(description=f"start {s.replicas} canary instance(s) of {target} beside {old}",
                           release=target, count=s.replicas, tag="new", role="canary"))
    steps.append(WaitReadyStep(description=f"wait until all {s.replicas} canary instance(s) are ready "
                               f"(timeout {format_duration(s.deploy_timeout)})", tag="new", timeout=s.deploy_timeout))
    for cs in s.canary_steps:
        if cs.kind != "promote":
            steps.append(CanaryPhaseStep(description=cs.description, phase=cs, release=target, stable=old))
    steps.append(RouteStep(description=f"promote {target}: 100% of traffic, it becomes stable",
                           weights={target: 100}, commit=RoutingCommit(target, old)))
    if s.verify:
        steps.append(VerifyStep(description=f"verify {target} under load", release=target))
    return steps + _retire_release(s, old)


def plan_rolling(s: RolloutSettings, state: EnvState, target: str) -> list[Step]:
    """Replace instances in batches: at most ``replicas + max_surge`` running and never fewer than
    ``replicas - max_unavailable`` ready (assuming the old set is whole)."""
    if s.max_surge <= 0 and s.max_unavailable <= 0:
        raise BadInput("max_surge and max_unavailable cannot both be 0")
    old = state.current_release
    remaining = [i.id for i in state.of_release(old)] if old else []
    steps: list[Step] = _stop_strays(state, (old, target) if old != target else (old,))
    started, batch = 0, 0
    while started < s.replicas or remaining:
        batch += 1
        # Old instances that may go before their replacements are ready (max_unavailable).
        early = remaining[: s.max_unavailable]
        if early:
            remaining = remaining[len(early):]
            steps += _retire(early, s, _proportional(target, started, old, len(remaining)))
        n_new = min(max(s.max_surge, 0) + len(early), s.replicas - started)
        if n_new > 0:
            tag = f"batch{batch}"
            started += n_new
            steps.append(StartStep(description=f"start {n_new} instance(s) of {target} (batch {batch})",
                                   release=target, count=n_new, tag=tag, role="stable"))
            steps.append(WaitReadyStep(description=f"wait until batch {batch} is ready "
                                       f"(timeout {format_duration(s.deploy_timeout)})", tag=tag,
                                       timeout=s.deploy_timeout))
            weights = _proportional(target, started, old, len(remaining))
            steps.append(RouteStep(description=f"add batch {batch} to rotation: {_fmt_weights(weights)}",
                                   weights=weights))
        # Retire as many old instances as replacements came up (all that are left at the end).
        late = remaining if started >= s.replicas else remaining[: max(n_new - len(early), 0)]
        if late:
            remaining = remaining[len(late):]
            steps += _retire(late, s, _proportional(target, started, old, len(remaining)))
        if batch > s.replicas + len(state.instances) + 2:  # a planning bug must not loop forever
            raise RuntimeError("rolling plan did not converge")
    previous = old if old != target else state.previous_release
    steps.append(RouteStep(description=f"{target} serves 100% of traffic", weights={target: 100},
                           commit=RoutingCommit(target, previous)))
    if s.verify:
        steps.append(VerifyStep(description=f"verify {target} under load", release=target))
    return steps


def _retire(ids: list[str], s: RolloutSettings, weights: dict[str, int]) -> list[Step]:
    return [
        UnrouteStep(description=f"take {len(ids)} old instance(s) out of rotation; {_fmt_weights(weights)}",
                    ids=tuple(ids), weights=weights),
        DrainStep(description=f"drain {len(ids)} old instance(s) (timeout {format_duration(s.drain_timeout)})",
                  ids=tuple(ids), timeout=s.drain_timeout),
        StopStep(description=f"stop {len(ids)} old instance(s)", ids=tuple(ids)),
    ]


def plan_rollback(s: RolloutSettings, state: EnvState, target: str) -> tuple[list[Step], bool]:
    """Steps to roll back to ``target``; second value says whether it is only a router switch."""
    current = state.current_release
    if target == current:
        raise BadInput(f"{target} is already serving")
    if state.is_warm(target, s.replicas):
        steps = _stop_strays(state, (current, target))
        steps.append(RouteStep(description=f"switch 100% of traffic back to {target} (warm)",
                               weights={target: 100}, commit=RoutingCommit(target, current)))
        if current:
            steps.append(DrainStep(description=f"drain {current}", release=current, timeout=s.drain_timeout))
            steps.append(KeepWarmStep(description=f"keep {current} warm for {format_duration(s.scale_down_delay)}",
                                      release=current, delay=s.scale_down_delay))
        return with_workers(steps, s, state, target), True
    return with_workers(plan_blue_green(replace(s, verify=False), state, target), s, state, target), False


def _proportional(new: str, n_new: int, old: str | None, n_old: int) -> dict[str, int]:
    if not old or n_old == 0 or old == new:
        return {new: 100}
    if n_new == 0:
        return {old: 100}
    pct = round(100 * n_new / (n_new + n_old))
    return {new: pct, old: 100 - pct}


def _fmt_weights(w: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}%" for k, v in w.items())
