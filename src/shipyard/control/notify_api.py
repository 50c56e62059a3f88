"""Control API routes for ``shipyard silence`` and ``shipyard notify``.

``POST /v1/silences`` {match, for, comment, created_by}; ``GET /v1/silences[?all=1]``;
``POST /v1/silences/expire`` {id}; ``POST /v1/notify/test`` {receiver, env} (waits for the outcome);
``GET /v1/notify/deliveries[?receiver=R&limit=N]``. Receiver URLs and passwords are never in an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.control.httpserver import Handler
from shipyard.control.notify import Notifier
from shipyard.engine.alerting.notify import parse_matchers
from shipyard.errors import BadInput, NotFound
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec, format_duration, parse_duration
from shipyard.primitives.spec.notifications import check_secrets
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store
from shipyard.primitives.store.notify import SilenceRec

MAX_SILENCE_S = 365 * 86400.0
TEST_WAIT_S = 75.0


@dataclass(frozen=True)
class NotifyContext:
    store: Store
    clock: Clock
    load_spec: Callable[[], Spec]
    notifier: Notifier
    secrets: SecretStore


def silence_json(s: SilenceRec, now: float) -> dict[str, Any]:
    state = "active" if s.starts_at <= now < s.ends_at else ("expired" if s.ends_at <= now else "pending")
    text = ",".join(f"{m['name']}{'=~' if m.get('regex') else '='}{m['value']}" for m in s.matchers)
    return {**s.to_json(), "state": state, "match": text}


def notify_routes(ctx: NotifyContext) -> dict[tuple[str, str], Handler[object]]:
    async def add_silence(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        try:
            matchers = parse_matchers(str(body.get("match") or ""))
        except ValueError as exc:
            raise BadInput(f"--match: {exc}") from None
        try:
            duration = parse_duration(str(body.get("for") or ""), upper=MAX_SILENCE_S)
        except ValueError as exc:
            raise BadInput(f"--for: {exc}") from None
        if duration <= 0:
            raise BadInput("--for: must be more than 0")
        comment = str(body.get("comment") or "").strip()
        if not comment:
            raise BadInput("-m/--message: say why (it is shown with the silence)")
        now = ctx.clock.time()
        rec = await asyncio.to_thread(
            ctx.store.add_silence, [{"name": m.name, "value": m.value, "regex": m.regex} for m in matchers],
            starts_at=now, ends_at=now + duration, comment=comment[:500],
            created_by=str(getattr(who, "performer", "local"))[:100], at=now)
        return {**silence_json(rec, now), "for": format_duration(duration)}

    async def list_silences(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        now = ctx.clock.time()
        recs = await asyncio.to_thread(ctx.store.silences, active_at=None if q.get("all") else now)
        return {"silences": [silence_json(s, now) for s in recs]}

    async def expire(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        try:
            sid = int(body.get("id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadInput(f"expected a silence id (a number), got {body.get('id')!r}") from None
        now = ctx.clock.time()
        rec = await asyncio.to_thread(ctx.store.expire_silence, sid, at=now)
        return silence_json(rec, now)

    async def test(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        spec = ctx.load_spec()
        name = str(body.get("receiver") or "")
        receiver = spec.notifications.receiver(name)
        if receiver is None:
            known = ", ".join(r.name for r in spec.notifications.receivers) or "none"
            raise NotFound(f"--receiver: unknown receiver {name!r} (known: {known})")
        env = str(body.get("env") or "") or spec.env_names[0]
        spec.env(env)
        check_secrets(spec.notifications, [env], ctx.secrets.names, only=name)
        delivery_id = await asyncio.to_thread(ctx.notifier.test, name, env)
        deadline = ctx.clock.monotonic() + min(TEST_WAIT_S, receiver.timeout + 5.0)
        while True:
            rec = await asyncio.to_thread(ctx.store.delivery, delivery_id)
            if rec is None or rec.status != "pending" or rec.attempts > 0 or ctx.clock.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert rec is not None
        return {"receiver": name, "kind": receiver.kind, "env": env, "delivery": rec.to_json()}

    async def deliveries(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        try:
            limit = max(1, min(1000, int(q.get("limit") or 50)))
        except ValueError:
            raise BadInput(f"--limit: expected a number, got {q.get('limit')!r}") from None
        recs = await asyncio.to_thread(ctx.store.list_deliveries, limit, q.get("receiver") or None)
        return {"deliveries": [d.to_json(with_payload=bool(q.get("payload"))) for d in recs]}

    return {
        ("POST", "/v1/silences"): add_silence,
        ("GET", "/v1/silences"): list_silences,
        ("POST", "/v1/silences/expire"): expire,
        ("POST", "/v1/notify/test"): test,
        ("GET", "/v1/notify/deliveries"): deliveries,
    }
