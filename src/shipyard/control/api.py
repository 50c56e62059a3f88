"""The control API's routes. Every request is identified and authorized first (control/access: a token,
its role and environments); each handler gets the caller's ``Identity`` and records it as the performer.

Each handler loads shipyard.toml at most once (``SpecSource.load``) and passes the snapshot down.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.control.access.identities import Identity
from shipyard.control.access.routes import AccessContext, access_routes
from shipyard.control.accessories import Accessories
from shipyard.control.accessories_api import accessory_routes
from shipyard.control.backups import BackupService
from shipyard.control.deploys.approvals import ApprovalBook
from shipyard.control.deploys.inputs import DeployRequest
from shipyard.control.deploys.oneoff import OneOffs
from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.service import DeployService
from shipyard.control.deploys.status import status_json
from shipyard.control.events import EventLog
from shipyard.control.faces_api import FacesContext, faces_routes
from shipyard.control.httpserver import Handler, Upgrade
from shipyard.control.jobs import JobService
from shipyard.control.jobs_api import job_routes
from shipyard.control.logs_api import LogsContext, logs_routes
from shipyard.control.metrics_api import MetricsContext, metrics_routes
from shipyard.control.notify_api import NotifyContext, notify_routes
from shipyard.control.paths import Paths
from shipyard.control.ptysession import PtySession
from shipyard.control.reads import ReadContext, read_routes
from shipyard.control.specsource import SpecSource
from shipyard.control.target import Targets
from shipyard.engine.releases import fetch_ref, resolve_ref
from shipyard.engine.rollout.canary_runner import COMMANDS
from shipyard.errors import BadInput, NotFound, Refused
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.notifications import check_secrets
from shipyard.primitives.store import Store
from shipyard.primitives.ttyframes import PROTOCOL


@dataclass(frozen=True)
class ApiContext:
    project: Path
    paths: Paths
    clock: Clock
    backups: BackupService
    specs: SpecSource
    deploys: DeployService
    registry: Registry
    targets: Targets
    oneoffs: OneOffs
    store: Store
    events: EventLog
    stop: Callable[[bool], None]  # `shipyard down`: True stops every instance and the router too
    approvals: ApprovalBook
    access: AccessContext  # identities, audit, secrets, approve/reject (control/access/routes.py)
    metrics: MetricsContext | None = None  # history, alerts, events (control/metrics_api.py)
    notify: NotifyContext | None = None  # silences, notify test (control/notify_api.py)
    jobs: JobService | None = None  # scheduled jobs (control/jobs.py)
    accessories: Accessories | None = None  # dev accessories (control/accessories.py)
    faces: FacesContext | None = None  # incidents, maintenance, reports (control/faces_api.py)


def build_routes(ctx: ApiContext) -> dict[tuple[str, str], Handler[Identity]]:
    async def ping(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return {"ok": True, "pid": os.getpid(), "project": str(ctx.project), "spec_loads": ctx.specs.loads}

    async def _start(req: DeployRequest, plan_only: bool, who: Identity, override: str | None = None,
                     spec: Spec | None = None, detach: bool = False) -> AsyncIterator[dict[str, Any]]:
        # Prepared now, so bad input is answered as one JSON error, not inside a stream.
        spec = spec or ctx.specs.load()
        plan = ctx.deploys.prepare(req, spec)
        # A receiver this environment's notifications reach without its secret: bad input, as at `up`.
        check_secrets(spec.notifications, [req.env], ctx.deploys.secrets.names)
        performer = who.performer
        if not plan_only:
            ctx.deploys.check_manual_lock(plan)
            ctx.deploys.check_promotion(plan)
            ctx.deploys.check_window(plan, override, performer)
            if plan.approval is None:
                ctx.deploys.check_free(plan.env)
        ctx.deploys.check_port(plan)
        if plan.approval is not None and not plan_only:
            # Waits for approvals; the lock, windows and a running deployment are checked again at its start.
            return ctx.approvals.follow(ctx.approvals.create(plan, who.name, performer, override, req), detach)
        return ctx.deploys.stream(plan, plan_only, performer)

    async def known_ref(ref: str | None) -> str | None:
        """A ref this checkout lacks (a commit a pipeline just pushed) fetched from its origin, off the event
        loop: then deployed by its commit id."""
        if ref is None:
            return None
        try:
            resolve_ref(ctx.project, ref)
        except NotFound:
            return (await asyncio.to_thread(fetch_ref, ctx.project, ref)).sha
        return ref

    async def deploy(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        ref = await known_ref(_opt(body, "ref"))
        req = DeployRequest("deploy", _env(body), ref=ref, release=_opt(body, "release"),
                            strategy=_opt(body, "strategy"), from_env=_opt(body, "from"))
        spec = ctx.specs.load()
        if req.from_env:
            spec.env(req.from_env)  # unknown environment → clear error
        override = None
        if body.get("override_window"):
            override = _opt(body, "reason")
            if not override:
                raise BadInput("--override-window needs --reason TEXT (it is recorded)")
        return await _start(req, bool(body.get("plan")), who, override, spec, bool(body.get("detach")))

    async def rollback(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return await _start(DeployRequest("rollback", _env(body), to=_opt(body, "to")), bool(body.get("plan")), who)

    async def status(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return status_json(ctx.specs.load(), q.get("env"), store=ctx.store, targets=ctx.targets,
                           registry=ctx.registry)

    async def canary(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        env = _env(body)
        ctx.specs.load().env(env)  # unknown environment → clear error
        command = body.get("command")
        if command not in COMMANDS:
            raise BadInput(f"unknown canary command {command!r} (expected one of {', '.join(COMMANDS)})")
        run = ctx.registry.canary(env)
        if run is None:
            raise Refused(f"no canary rollout is running on {env} (see 'shipyard status --env {env}')")
        said = run.control(str(command))
        ctx.events.add(env, "canary_command", f"{command}: {said}")
        ctx.store.add_audit(ctx.clock.time(), who.performer, f"canary_{command}", env, run.release, {"message": said})
        return {"ok": True, "env": env, "command": command, "message": said, "canary": run.to_json()}

    async def run(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        argv = body.get("argv")
        if not isinstance(argv, list):
            raise BadInput("argv: expected the command as a list of strings")
        job = await ctx.oneoffs.prepare(ctx.specs.load(), _env(body), _opt(body, "release"), argv)
        if body.get("interactive") == "remote":  # a terminal carried by this connection (ptysession)
            run_id, performer = ctx.oneoffs.hand_over(job)["run"], who.performer
            session = PtySession(job, lambda code: ctx.oneoffs.finished(run_id, code, performer))
            return Upgrade(PROTOCOL, session.serve)
        if body.get("interactive"):
            return ctx.oneoffs.hand_over(job)
        return ctx.oneoffs.stream(job, who.performer)

    async def run_done(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        code = body.get("exit_code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise BadInput("exit_code: expected a whole number")
        ctx.oneoffs.finished(str(_opt(body, "run")), code, who.performer)
        return {"ok": True}

    async def lock(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        env, action = _env(body), body.get("action")
        ctx.specs.load().env(env)  # unknown environment → clear error
        if action == "acquire":
            message = _opt(body, "message")
            if not message:
                raise BadInput("-m/--message is required: say why deploys are held")
            held = ctx.store.acquire_manual_lock(env, who.performer, message[:500], ctx.clock.time())
            ctx.events.add(env, "lock", f"locked by {held.holder}: {held.message}")
            ctx.store.add_audit(ctx.clock.time(), who.performer, "lock_acquire", env, None, {"message": held.message})
            return {"env": env, "locked": True, "holder": held.holder, "message": held.message,
                    "since": held.acquired_at}
        if action == "release":
            was = ctx.store.release_manual_lock(env)
            if was is not None:
                ctx.events.add(env, "lock", f"released by {who.performer} (held by {was.holder}: {was.message})")
                ctx.store.add_audit(ctx.clock.time(), who.performer, "lock_release", env, None,
                                    {"was_held_by": was.holder, "message": was.message})
            return {"env": env, "locked": False, "was_locked": was is not None}
        raise BadInput(f"action: expected acquire or release, got {action!r}")

    async def locks(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        env = q.get("env")
        if env:
            ctx.specs.load().env(env)
        return [{"env": h.env, "holder": h.holder, "message": h.message, "since": h.acquired_at}
                for h in ctx.store.manual_locks() if not env or h.env == env]

    async def down(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        ctx.store.add_audit(ctx.clock.time(), who.performer, "down", None, None, {"all": bool(body.get("all", True))})
        ctx.stop(bool(body.get("all", True)))
        return {"ok": True}

    return {
        **read_routes(ReadContext(ctx.store, ctx.paths, ctx.clock, ctx.specs.load, ctx.backups)),
        **(metrics_routes(ctx.metrics) if ctx.metrics is not None else {}),
        **access_routes(ctx.access),
        **logs_routes(LogsContext(ctx.store, ctx.paths, ctx.clock, ctx.specs.load)),
        **(notify_routes(ctx.notify) if ctx.notify is not None else {}),
        **(job_routes(ctx.jobs, ctx.specs.load) if ctx.jobs is not None else {}),
        **(accessory_routes(ctx.accessories, ctx.specs.load) if ctx.accessories is not None else {}),
        **(faces_routes(ctx.faces) if ctx.faces is not None else {}),
        ("GET", "/v1/ping"): ping,
        ("POST", "/v1/deploy"): deploy,
        ("POST", "/v1/rollback"): rollback,
        ("GET", "/v1/status"): status,
        ("POST", "/v1/canary"): canary,
        ("POST", "/v1/run"): run,
        ("POST", "/v1/lock"): lock,
        ("GET", "/v1/locks"): locks,
        ("POST", "/v1/run/done"): run_done,
        ("POST", "/v1/down"): down,
    }


def remote_routes(routes: dict[tuple[str, str], Handler[Identity]]) -> dict[tuple[str, str], Handler[Identity]]:
    """The routes as the remote listener serves them: ``run -i``'s hand-over (the directory and the whole
    environment, secrets included, for the CLI to run the command itself) only ever goes to a local caller;
    a remote one gets the terminal of ``interactive = "remote"`` instead, and the environment stays here."""
    local_run = routes[("POST", "/v1/run")]

    async def run(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        if body.get("interactive") is True:
            raise Refused("run -i over the network gets a terminal, never the environment: use a shipyard "
                          "CLI with SHIPYARD_URL set (it asks for interactive = \"remote\")")
        return await local_run(body, q, who)

    return {**routes, ("POST", "/v1/run"): run}


def _env(body: dict[str, Any]) -> str:
    env = body.get("env")
    if not isinstance(env, str) or not env:
        raise BadInput("--env is required")
    return env


def _opt(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise BadInput(f"{key}: expected a string, got {type(value).__name__}")
