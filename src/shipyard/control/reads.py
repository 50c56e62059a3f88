"""Control API routes for what the CLI reads from the state store, and for ``shipyard backup …``.

The CLI never opens the state store or a backup repository itself; it asks these routes. They get a
``ReadContext`` — exactly the collaborators they use, not the daemon. ``GET /v1/events?env=&kinds=a,b&limit=``
gives the environment's recorded events, oldest first (``shipyard logs --timestamps`` places the
instances' start / restart / stop events among their lines).

Long backup operations (run, verify, restore, drill) answer as an NDJSON stream: ``started``, then a
``heartbeat`` every few seconds while the work goes on, then one ``result`` (or ``error`` with its
``exit_code``). The heartbeat lets the client use an idle timeout instead of no timeout at all (a full
backup or a drill may take far longer than any fixed request timeout). The work does not depend on the
connection: a client that goes away does not stop it, and it is recorded all the same.

Backup runs, restores, drills and forgets are audited when they end (performer, env, source, outcome, and
what was restored where — a target URL without its password), failures and interruptions too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.control.backups import BackupService
from shipyard.control.deploys.status import shown_role
from shipyard.control.httpserver import Handler
from shipyard.control.paths import Paths
from shipyard.errors import BadInput, NotFound, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control.reads")

HEARTBEAT_S = 5.0
MAX_HISTORY = 1000  # deployments one history call returns


@dataclass(frozen=True)
class ReadContext:
    store: Store
    paths: Paths
    clock: Clock
    load_spec: Callable[[], Spec]
    backups: BackupService


def read_routes(ctx: ReadContext) -> dict[tuple[str, str], Handler[object]]:
    running: set[asyncio.Task[Any]] = set()  # long operations outlive their request (and its client)

    def env_of(args: dict[str, Any]) -> str:
        env = args.get("env")
        if not isinstance(env, str) or not env:
            raise BadInput("--env is required")
        return env

    def known_env(args: dict[str, Any]) -> str:
        env = env_of(args)
        ctx.load_spec().env(env)  # bad config or unknown environment → exit 2
        return env

    async def history(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env = known_env(q)
        limit = _int(q.get("limit", "20"), "--limit")
        if not 1 <= limit <= MAX_HISTORY:
            raise BadInput(f"--limit must be between 1 and {MAX_HISTORY}, got {limit}")
        rows: list[dict[str, Any]] = []
        for d in ctx.store.list_deployments(env, limit=limit):
            steps = ctx.store.list_steps(d.id)
            dur = (d.finished_at - d.started_at) if d.finished_at else None
            detail = d.detail or {}
            rows.append({"deployment": d.id, "env": d.env, "kind": d.kind, "release": d.release,
                         "previous_release": d.previous_release, "strategy": d.strategy, "outcome": d.status,
                         "reason": d.reason, "started_at": d.started_at, "finished_at": d.finished_at,
                         "duration_s": round(dur, 3) if dur is not None else None,
                         # Why it was rolled back: failing conditions with observed values and windows.
                         "rollback": detail.get("rollback"), "trigger": detail.get("trigger"),
                         "performer": detail.get("performer"),
                         "steps": [{"name": s.name, "status": s.status, "started_at": s.started_at,
                                    "duration_s": s.duration_s} for s in steps]})
        return rows

    async def releases(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        envs = ctx.store.list_environments()
        return [{"release": r.id, "commit": r.commit, "ref": r.ref, "message": r.message, "author": r.author,
                 "created_at": r.created_at, "build_duration_s": r.build_duration_s,
                 "content_hash": r.content_hash, "serving": [e.name for e in envs if e.current_release == r.id],
                 "on_disk": (ctx.paths.state / "releases" / r.id).is_dir()} for r in ctx.store.list_releases()]

    async def instances(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env = known_env(q)
        if q.get("deployment"):
            return _started_by(env, _int(q["deployment"], "--deployment"))
        return [{"id": i.id, "env": i.env, "release": i.release, "index": i.index, "port": i.port, "pid": i.pid,
                 "role": shown_role(i.role), "state": i.state, "started_at": i.started_at, "restarts": i.restarts,
                 "process": i.process}
                for i in ctx.store.list_instances(env)]

    def _started_by(env: str, deployment: int) -> list[dict[str, Any]]:
        """The instances a deployment started (running or long gone: their logs stay on disk)."""
        dep = ctx.store.get_deployment(deployment)
        if dep is None or dep.env != env:
            raise NotFound(f"no deployment {deployment} on {env} (see 'shipyard history --env {env}')")
        live = {i.id for i in ctx.store.list_instances(env)}
        ids = [iid for st in ctx.store.list_steps(deployment) if st.name == "start"
               for iid in (st.detail or {}).get("instances", [])]
        return [{"id": iid, "env": env, "release": dep.release, "live": iid in live,
                 "log": str(ctx.paths.instance_log(env, iid))} for iid in ids]

    async def backup_list(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        return await ctx.backups.listing(env_of(q), _source(q))

    def long(op: str, env: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
        task = asyncio.ensure_future(work())
        running.add(task)
        task.add_done_callback(lambda t: _done(t, running, op, env))
        return _follow(op, env, task, ctx.clock)

    def audited(action: str, env: str, source: str | None, who: object, detail: dict[str, Any],
                work: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``work``, with one audit row when it ends: its outcome (ok, failed, interrupted) and ``detail``."""
        async def run() -> Any:
            outcome = "interrupted"  # what stays when the work is cancelled (the control plane stops)
            extra: dict[str, Any] = {}
            try:
                doc = await work()
                outcome, extra = _outcome(doc)
                return doc
            except ShipyardError as err:
                outcome, extra = "failed", {"error": str(err)}
                raise
            except Exception as exc:
                outcome, extra = "failed", {"error": f"internal error: {type(exc).__name__}"}
                raise
            finally:
                try:
                    ctx.store.add_audit(ctx.clock.time(), str(getattr(who, "performer", who)), action, env,
                                        source or "*", {"outcome": outcome, **detail, **extra})
                except ShipyardError as err:  # the work is done; a store problem must not hide its result
                    log.warning("could not audit the %s of %s: %s", action, env, err)

        return run

    async def backup_run(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, source = env_of(body), _source(body)

        async def work() -> dict[str, Any]:
            results, warnings = await ctx.backups.run(env, source)
            return {"result": [r.to_dict() for r in results], "warnings": warnings}

        return long("backup run", env, audited("backup_run", env, source, who, {}, work))

    async def backup_verify(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, source = env_of(body), _source(body)
        subset = body.get("subset")
        if subset is not None and (not isinstance(subset, int | float) or not 0 < subset <= 1):
            raise BadInput("subset must be a share of the chunks above 0 and at most 1")

        async def work() -> dict[str, Any]:
            return {"result": [r.to_dict() for r in await ctx.backups.verify(env, source, subset)]}

        return long("backup verify", env, work)

    async def backup_restore(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, source = env_of(body), _source(body)
        if source is None:
            raise BadInput("--source is required")
        to_url, to_path, yes = body.get("to"), body.get("to_path"), bool(body.get("yes"))
        if to_url and to_path:
            raise BadInput("give either --to or --to-path, not both")
        if not to_url and not to_path and not yes:
            raise Refused(f"restoring over the original of source {source!r} replaces its data; pass --yes "
                          "(or restore elsewhere with --to / --to-path)")
        # A relative target is the project's (the CLI sends absolute paths).
        path = ctx.paths.project / str(to_path) if to_path else None

        async def work() -> dict[str, Any]:
            result = await ctx.backups.restore(env, source, backup_id=body.get("backup"), to_url=to_url,
                                               to_path=path, replace=yes, at=body.get("at"))
            return {"result": result.to_dict()}

        where = {"to": redact_url(str(to_url))} if to_url else {"to_path": str(path)} if path else {"to": "original"}
        detail = {**where, "backup": body.get("backup"), "at": body.get("at")}
        return long("backup restore", env, audited("backup_restore", env, source, who, detail, work))

    async def backup_forget(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, source, dry = env_of(body), _source(body), bool(body.get("dry_run"))

        async def work() -> list[dict[str, Any]]:
            return [r.to_dict() for r in await ctx.backups.forget(env, source, dry)]

        return await audited("backup_forget", env, source, who, {"dry_run": dry}, work)()

    async def backup_drill(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, source = env_of(body), _source(body)

        async def work() -> dict[str, Any]:
            results, warnings = await ctx.backups.drill(env, source)
            return {"result": [r.to_dict() for r in results], "warnings": warnings}

        return long("backup drill", env, audited("backup_drill", env, source, who, {}, work))

    return {
        ("GET", "/v1/history"): history,
        ("GET", "/v1/releases"): releases,
        ("GET", "/v1/instances"): instances,
        ("GET", "/v1/backups"): backup_list,
        ("POST", "/v1/backups/run"): backup_run,
        ("POST", "/v1/backups/verify"): backup_verify,
        ("POST", "/v1/backups/restore"): backup_restore,
        ("POST", "/v1/backups/forget"): backup_forget,
        ("POST", "/v1/backups/drill"): backup_drill,
    }


async def _follow(op: str, env: str, task: asyncio.Future[dict[str, Any]], clock: Clock
                  ) -> AsyncIterator[dict[str, Any]]:
    t0 = clock.monotonic()
    yield {"event": "started", "op": op, "env": env}
    while not task.done():
        await asyncio.wait({task}, timeout=HEARTBEAT_S)
        if not task.done():
            yield {"event": "heartbeat", "op": op, "elapsed_s": round(clock.monotonic() - t0, 1)}
    try:
        outcome = task.result()
    except ShipyardError as err:
        yield {"event": "error", "error": str(err), "exit_code": err.exit_code}
        return
    except Exception as exc:  # a bug must reach the user as one line, the traceback goes to the log
        log.exception("%s of %s failed", op, env)
        yield {"event": "error", "error": f"{op} failed: {exc!r} (see the control plane's log)", "exit_code": 1}
        return
    yield {"event": "result", **outcome}


def _done(task: asyncio.Future[Any], running: set[asyncio.Task[Any]], op: str, env: str) -> None:
    running.discard(task)
    # Its client may be gone: a failure is logged here too, never lost as "exception never retrieved".
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("%s of %s failed: %s", op, env, exc)


def _source(args: dict[str, Any]) -> str | None:
    source = args.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise BadInput("source must be a name")
    return source


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{what} must be a whole number, not {text!r}") from None


def _outcome(doc: Any) -> tuple[str, dict[str, Any]]:
    """ok, or failed naming the sources that failed (a run's or drill's results, a restore's result)."""
    results = doc.get("result") if isinstance(doc, dict) else None
    rows = results if isinstance(results, list) else [results] if isinstance(results, dict) else []
    failed = sorted({str(r.get("source")) for r in rows if r.get("ok") is False})
    ids = [r["backup_id"] for r in rows if r.get("backup_id")]
    extra: dict[str, Any] = {"backup_ids": ids} if ids else {}
    return ("failed", {**extra, "failed": failed}) if failed else ("ok", extra)


def redact_url(url: str) -> str:
    """A URL as the audit keeps it: without a password (``postgresql://app:***@db/app``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
