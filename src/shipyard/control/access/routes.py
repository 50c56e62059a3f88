"""Routes of identities, the audit log, secrets and approvals (each checked by the gate first, roles.py).

``POST /v1/tokens`` answers the new token once; nothing else ever holds it in clear (not the store, the
audit, the events or the log). ``POST /v1/secrets`` records the names changed, never values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.control.access.gate import check
from shipyard.control.access.identities import Identity, TokenBook, token_json
from shipyard.control.access.roles import check_role
from shipyard.control.deploys.approvals import ApprovalBook
from shipyard.control.httpserver import Handler
from shipyard.errors import BadInput
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.durations import parse_duration
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store

MAX_MESSAGE = 500


@dataclass(frozen=True)
class AccessContext:
    store: Store
    clock: Clock
    tokens: TokenBook
    secrets: SecretStore
    approvals: ApprovalBook
    load_spec: Callable[[], Spec]


def access_routes(ctx: AccessContext) -> dict[tuple[str, str], Handler[Identity]]:
    def audit(who: Identity, action: str, env: str | None, target: str | None, detail: dict[str, Any]) -> None:
        ctx.store.add_audit(ctx.clock.time(), who.performer, action, env, target, detail)

    async def whoami(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return {"name": who.name, "role": who.role, "envs": list(who.envs) if who.envs is not None else None,
                "performer": who.performer}

    async def token_create(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        name, role = _text(body, "name"), check_role(_text(body, "role"))
        envs = body.get("envs") or None
        if envs is not None:
            if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
                raise BadInput("--env: expected environment names")
            spec = ctx.load_spec()
            for env in envs:
                spec.env(env)  # unknown environment → exit 2
            envs = sorted(set(envs))
        rec, token = ctx.tokens.create(name, role, envs, who.performer)
        audit(who, "token_create", None, name, {"role": role, "envs": envs})
        return {**token_json(rec), "token": token}

    async def token_list(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return [token_json(r) for r in ctx.store.list_tokens()]

    async def token_revoke(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        rec = ctx.store.revoke_token(_text(body, "name"), ctx.clock.time())
        audit(who, "token_revoke", None, rec.name, {"role": rec.role})
        return token_json(rec)

    async def audit_list(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        env = q.get("env") or None
        if env:
            ctx.load_spec().env(env)
        since = None
        if q.get("since"):
            try:
                since = ctx.clock.time() - parse_duration(q["since"])
            except ValueError as exc:
                raise BadInput(f"--since: {exc}") from None
        limit = q.get("limit", "200")
        if not limit.isdigit() or not 0 < int(limit) <= 10_000:
            raise BadInput(f"--limit: expected a whole number from 1 to 10000, got {limit[:20]!r}")
        return [r.to_json() for r in ctx.store.list_audit(env, since, int(limit))]

    async def secrets(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        env, action = _text(body, "env"), body.get("action")
        ctx.load_spec().env(env)
        if action == "set":
            values = body.get("values")
            if not isinstance(values, dict) or not values or not all(isinstance(v, str) for v in values.values()):
                raise BadInput("values: expected KEY=VALUE pairs")
            version = ctx.secrets.set(env, values)
            names = sorted(values)
        elif action == "unset":
            keys = body.get("keys")
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
                raise BadInput("keys: expected secret names")
            version = ctx.secrets.unset(env, keys)
            names = sorted(keys)
        else:
            raise BadInput(f"action: expected set or unset, got {action!r}")
        audit(who, f"secrets_{action}", env, ", ".join(names), {"names": names, "version": version})
        return {"env": env, action: names, "version": version}

    def decide(decision: str) -> Handler[Identity]:
        async def handler(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
            number = body.get("deployment")
            if not isinstance(number, int) or isinstance(number, bool):
                raise BadInput("ID: expected a deployment number (see `shipyard status` or `history`)")
            dep = ctx.store.get_deployment(number)
            if dep is not None:
                check(who, "approve", dep.env)  # an approver limited to staging cannot approve prod
            message = body.get("message")
            if message is not None and not isinstance(message, str):
                raise BadInput("-m/--message: expected text")
            return ctx.approvals.decide(number, who.name, who.performer, decision,
                                        message[:MAX_MESSAGE] if message else None)
        return handler

    async def waiting(body: dict[str, Any], q: dict[str, str], who: Identity) -> Any:
        return ctx.approvals.waiting()

    return {
        ("GET", "/v1/whoami"): whoami,
        ("POST", "/v1/tokens"): token_create,
        ("GET", "/v1/tokens"): token_list,
        ("POST", "/v1/tokens/revoke"): token_revoke,
        ("GET", "/v1/audit"): audit_list,
        ("POST", "/v1/secrets"): secrets,
        ("POST", "/v1/approve"): decide("approve"),
        ("POST", "/v1/reject"): decide("reject"),
        ("GET", "/v1/approvals"): waiting,
    }


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{key}: expected a non-empty string")
    if re.search(r"[\x00-\x1f]", value):
        raise BadInput(f"{key}: control characters are not allowed")
    return value.strip()
