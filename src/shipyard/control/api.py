"""The control API's routes. Every route needs the bearer token (see httpserver)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from shipyard.control import deployer
from shipyard.control.httpserver import Handler
from shipyard.errors import BadInput

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon


def build_routes(d: Daemon) -> dict[tuple[str, str], Handler]:
    async def ping(body: dict[str, Any], q: dict[str, str]) -> Any:
        return {"ok": True, "pid": os.getpid(), "project": str(d.paths.project)}

    async def _start(make: Any, plan: bool) -> AsyncIterator[dict[str, Any]]:
        # Prepare now so bad input is answered as one JSON error, not inside a stream.
        prep = make()
        if not plan:
            d.check_not_busy(prep.env)
        await d.check_port(prep.env, d.load_spec().env(prep.env).port)
        return deployer.stream(d, lambda: prep, plan)

    async def deploy(body: dict[str, Any], q: dict[str, str]) -> Any:
        env = _env(body)
        return await _start(lambda: deployer.prepare_deploy(d, env, ref=body.get("ref"), release=body.get("release"),
                                                      strategy=body.get("strategy")), bool(body.get("plan")))

    async def rollback(body: dict[str, Any], q: dict[str, str]) -> Any:
        env = _env(body)
        return await _start(lambda: deployer.prepare_rollback(d, env, to=body.get("to")), bool(body.get("plan")))

    async def status(body: dict[str, Any], q: dict[str, str]) -> Any:
        from shipyard.control.status import status_json

        return status_json(d, q.get("env"))

    async def canary(body: dict[str, Any], q: dict[str, str]) -> Any:
        from shipyard.errors import Refused

        env = _env(body)
        d.load_spec().env(env)  # unknown environment → clear error
        command = body.get("command")
        run = d.canaries.get(env)
        if run is None:
            raise Refused(f"no canary rollout is running on {env} (see 'shipyard status --env {env}')")
        said = run.control(str(command))
        d.event(env, "canary_command", f"{command}: {said}")
        return {"ok": True, "env": env, "command": command, "message": said, "canary": run.to_json()}

    async def down(body: dict[str, Any], q: dict[str, str]) -> Any:
        d.stop_everything = bool(body.get("all", True))
        d.stopping.set()
        return {"ok": True}

    from shipyard.control.reads import ReadContext, read_routes  # wiring (cli)

    return {
        **read_routes(ReadContext(d.store, d.paths, d.clock, d.load_spec, d.backups)),  # wiring (cli)
        ("GET", "/v1/ping"): ping,
        ("POST", "/v1/deploy"): deploy,
        ("POST", "/v1/rollback"): rollback,
        ("GET", "/v1/status"): status,
        ("POST", "/v1/canary"): canary,
        ("POST", "/v1/down"): down,
    }


def _env(body: dict[str, Any]) -> str:
    env = body.get("env")
    if not isinstance(env, str) or not env:
        raise BadInput("--env is required")
    return env
