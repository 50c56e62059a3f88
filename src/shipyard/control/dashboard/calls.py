"""The dashboard's way into the control plane: the very API route handlers the CLI calls, behind the very
gate check (the route's capability, the caller's environments), so a viewer is refused here as there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.control.access.gate import Gatekeeper
from shipyard.control.access.identities import Identity
from shipyard.control.httpserver import Handler
from shipyard.errors import NotFound, ShipyardError


class ApiCalls:
    def __init__(self, gate: Gatekeeper, routes: Mapping[tuple[str, str], Handler[Identity]]) -> None:
        self.gate, self.routes = gate, routes

    async def call(self, who: Identity, method: str, path: str, body: dict[str, Any] | None = None,
                   query: dict[str, str] | None = None) -> Any:
        """The route's answer (a JSON value or an async iterator of them); raises its ShipyardError."""
        handler = self.routes.get((method, path))
        if handler is None:
            raise NotFound(f"no route {method} {path}")
        body, query = body or {}, query or {}
        caller = self.gate.authorize(who, method, path, body, query)
        return await handler(body, query, caller)

    def may(self, who: Identity, method: str, path: str, env: str | None = None) -> bool:
        """Whether ``who`` would pass the gate (to show or hide an action's button)."""
        try:
            self.gate.authorize(who, method, path, {"env": env} if env else {}, {"env": env} if env else {})
        except ShipyardError:
            return False
        return True
