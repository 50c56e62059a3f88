"""Control API routes for ``shipyard accessory``: ``POST /v1/accessories {env, action, names}`` (start,
stop, status) — the accessories of the environment as the spec names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.control.accessories import Accessories
from shipyard.control.httpserver import Handler
from shipyard.errors import BadInput
from shipyard.primitives.spec import Spec


def accessory_routes(acc: Accessories, load_spec: Callable[[], Spec]) -> dict[tuple[str, str], Handler[object]]:
    async def handle(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env, action, names = body.get("env"), body.get("action"), body.get("names") or None
        if not isinstance(env, str) or action not in ("start", "stop", "status"):
            raise BadInput("give --env and one of start, stop, status")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise BadInput("accessory names must be strings")
        declared = dict(load_spec().env(env).accessories)
        if not declared:
            raise BadInput(f"{env} has no accessories ([environments.{env}.accessories])")
        if action == "start":
            return {"accessories": await acc.start(env, declared, names)}
        if action == "stop":
            return {"accessories": await acc.stop(env, declared, names)}
        chosen = {n: declared[n] for n in names} if names else declared
        return {"accessories": acc.status(env, chosen)}

    return {("POST", "/v1/accessories"): handle}
