"""The control API's gate: identify the caller (401, 429) and check the route's capability (403).

Used by ``ApiServer`` for every request, before its handler runs. Environment limits: a route acting on
an environment (``env`` in the body, or in the query of a read) is refused to an identity limited to other
environments. Approve/reject name a deployment, not an environment: their handler checks its environment.
"""

from __future__ import annotations

import logging
from typing import Any

from shipyard.control.access.identities import Identity, TokenBook
from shipyard.control.access.limiter import FailureLimiter
from shipyard.control.access.roles import needed, refuse
from shipyard.errors import NotPermitted, Unauthenticated

log = logging.getLogger("shipyard.control.access")


class Gatekeeper:
    def __init__(self, book: TokenBook, limiter: FailureLimiter) -> None:
        self.book, self.limiter = book, limiter

    def identify(self, bearer: str | None, client: str) -> Identity:
        self.limiter.check(client)
        who = self.book.identify(bearer) if bearer else None
        if who is None:
            self.limiter.failed(client)
            # The token itself is never logged, not even in part.
            log.warning("control API: refused a %s token from %s", "missing" if not bearer else "wrong", client)
            raise Unauthenticated("the control plane refused this token: unknown or revoked (set SHIPYARD_TOKEN "
                                  "to a token from `shipyard token create`, or use the project's own)")
        return who

    def authorize(self, who: Identity, method: str, path: str, body: dict[str, Any],
                  query: dict[str, str]) -> Identity:
        cap = needed(method, path, body)
        check(who, cap, body.get("env") if method != "GET" else query.get("env"))
        return who.with_said(body.get("performer"))


def check(who: Identity, cap: str, env: object = None) -> None:
    """Raise ``NotPermitted`` (exit 4) unless ``who`` holds ``cap`` (on ``env``, when it names one)."""
    if not who.may(cap):
        raise refuse(who.name, who.role, cap)
    if isinstance(env, str) and env and not who.may_env(env):
        limited = ", ".join(who.envs or ())
        raise NotPermitted(f"{who.name} may act only on {limited}: environment {env!r} is not among them "
                           f"(a token for {env} is needed)")
