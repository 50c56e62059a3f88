"""The dashboard's actions: each form POST becomes the API call the CLI makes (same route handler, same
gate: a viewer is refused, a token limited to staging cannot act on prod), audited with the performer.

A rollback answers as soon as it has started (its plan is made and checked); it runs on in the control
plane, as `shipyard rollback --detach` would, and the live view follows it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from shipyard.control.access.identities import Identity
from shipyard.control.dashboard.calls import ApiCalls
from shipyard.errors import BadInput

log = logging.getLogger("shipyard.control")

CANARY = {"promote": "promote", "promote_full": "promote_full", "abort": "abort", "pause": "pause", "resume": "resume"}
VERBS = {"rollback": "roll back", "promote": "promote the canary of", "promote_full": "promote the canary of",
         "abort": "abort the canary of", "pause": "pause the canary of", "resume": "resume the canary of",
         "approve": "approve", "reject": "reject", "silence_add": "add a silence", "silence_expire": "expire a silence"}


class Actions:
    def __init__(self, calls: ApiCalls) -> None:
        self.calls = calls
        self._running: set[asyncio.Task[None]] = set()

    @staticmethod
    def verb(action: str, form: dict[str, str]) -> str:
        what = VERBS.get(action, action)
        target = form.get("env") or (f"deployment {form['deployment']}" if form.get("deployment") else "")
        return f"{what} {target}".strip()

    async def perform(self, who: Identity, action: str, form: dict[str, str]) -> str:
        """What happened, in a sentence; raises the route's ShipyardError (NotPermitted when refused)."""
        env = form.get("env", "")
        if action == "rollback":
            return await self._rollback(who, env)
        if action in CANARY:
            doc: Any = await self.calls.call(who, "POST", "/v1/canary", {"env": env, "command": CANARY[action]})
            return f"canary of {env}: {action}: {doc['message']}"
        if action in ("approve", "reject"):
            number = _int(form.get("deployment"), "deployment")
            body: dict[str, Any] = {"deployment": number}
            if form.get("message"):
                body["message"] = form["message"]
            doc = await self.calls.call(who, "POST", f"/v1/{action}", body)
            said = "approved" if action == "approve" else "rejected"
            return f"deployment {number}: {said} by {who.performer} (now {doc.get('status', 'recorded')})"
        if action == "silence_add":
            doc = await self.calls.call(who, "POST", "/v1/silences", {
                "match": form.get("match", ""), "for": form.get("for", ""), "comment": form.get("comment", "")})
            return f"silence #{doc['id']} added: {doc['match']} for {doc['for']}"
        if action == "silence_expire":
            number = _int(form.get("id"), "id")
            await self.calls.call(who, "POST", "/v1/silences/expire", {"id": number})
            return f"silence #{number} expired"
        raise BadInput(f"unknown action {action[:40]!r}")

    async def _rollback(self, who: Identity, env: str) -> str:
        stream: AsyncIterator[dict[str, Any]] = await self.calls.call(who, "POST", "/v1/rollback", {"env": env})
        first = await anext(stream)  # the plan: made and checked, the deployment not begun yet
        release = (first.get("plan") or {}).get("release", "?")

        async def drain() -> None:
            async for item in stream:
                if item.get("event") == "error":
                    log.warning("dashboard rollback of %s: %s", env, item.get("error"))

        task = asyncio.get_running_loop().create_task(drain(), name=f"dashboard-rollback-{env}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return f"rollback of {env} to {release} started"


def _int(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise BadInput(f"{what}: expected a number, got {(value or '')[:20]!r}") from None
