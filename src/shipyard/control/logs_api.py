"""``GET /v1/logs``: an environment's instance output, read here so that ``shipyard logs`` works from any
machine (``SHIPYARD_URL``) — and, when the control plane is down, by the local CLI with these same functions.

The answer is an NDJSON stream: one ``history`` event (per chosen instance file: its newest ``lines`` and
the time it sorts at when no line carries one), then with ``follow=1`` a ``line`` event per new line (with
the time it was read) and a ``heartbeat`` every few seconds, so that a client that went away is noticed and
its followers dropped. Interleaving by time stays with the CLI (cli/logmerge.py): it is presentation.
What to read and how is control/logreading.py, which the CLI also uses when the control plane is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.control.httpserver import Handler
from shipyard.control.logfiles import Follower
from shipyard.control.logreading import choose_logs, poll, read_history
from shipyard.control.paths import Paths
from shipyard.errors import BadInput, NotFound
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

POLL_S = 0.25
HEARTBEAT_S = 5.0
MAX_LINES = 100_000


@dataclass(frozen=True)
class LogsContext:
    store: Store
    paths: Paths
    clock: Clock
    load_spec: Callable[[], Spec]


def logs_routes(ctx: LogsContext) -> dict[tuple[str, str], Handler[object]]:
    async def logs(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env = q.get("env") or ""
        if not env:
            raise BadInput("--env is required")
        spec = ctx.load_spec()
        spec.env(env)  # unknown environment → exit 2
        n = _int(q.get("lines", "50"), "--lines")
        instance = _int(q["instance"], "--instance") if q.get("instance") else None
        live = {i.id: {"index": i.index, "started_at": i.started_at, "process": i.process}
                for i in ctx.store.list_instances(env)}
        if q.get("deployment"):
            chosen = _started_by(env, _int(q["deployment"], "--deployment"))
        else:
            chosen = choose_logs(ctx.paths.state / "logs" / env, live, instance, q.get("process") or None,
                                 tuple(spec.processes))
        followers = {p: Follower(p) for p in chosen} if q.get("follow") in ("1", "true") else {}
        # Followers first, and the history up to where they start: no line shown twice, none missed between.
        files = read_history(chosen, live, n, {p: f.position for p, f in followers.items()})
        return _stream(files, followers, ctx.clock)

    def _started_by(env: str, deployment: int) -> list[Path]:
        dep = ctx.store.get_deployment(deployment)
        if dep is None or dep.env != env:
            raise NotFound(f"no deployment {deployment} on {env} (see 'shipyard history --env {env}')")
        ids = [iid for st in ctx.store.list_steps(deployment) if st.name == "start"
               for iid in (st.detail or {}).get("instances", [])]
        chosen = [p for p in (ctx.paths.instance_log(env, iid) for iid in ids) if p.exists()]
        if not chosen:
            raise BadInput(f"deployment {deployment} on {env} left no instance output")
        return chosen

    return {("GET", "/v1/logs"): logs}


async def _stream(files: list[dict[str, Any]], followers: dict[Path, Follower], clock: Clock
                  ) -> AsyncIterator[dict[str, Any]]:
    yield {"event": "history", "files": files}
    quiet = 0.0
    while followers:
        lines = await asyncio.to_thread(poll, followers)
        now = clock.time()
        for instance, text in lines:
            yield {"event": "line", "instance": instance, "text": text, "read_at": now}
        quiet = 0.0 if lines else quiet + POLL_S
        if quiet >= HEARTBEAT_S:
            quiet = 0.0
            yield {"event": "heartbeat"}
        await clock.sleep(POLL_S)


def _int(text: str, flag: str) -> int:
    if not text.isdigit() or int(text) > MAX_LINES:
        raise BadInput(f"{flag}: expected a whole number from 0 to {MAX_LINES}, got {text[:20]!r}")
    return int(text)
