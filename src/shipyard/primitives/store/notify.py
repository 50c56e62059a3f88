"""Notification state: alert groups, the deliveries outbox, silences (``Store`` mixes these in).

A delivery is a row before anything is sent: written in the transaction that decided it (with the alert
states and groups, see ``HistoryStore.save_alert_states``), sent by the control plane's notifier, then
marked delivered — or retried with backoff until it gives up. A control plane killed in between finds
it pending and sends it after ``shipyard up``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.errors import NotFound
from shipyard.primitives.store import schema as t
from shipyard.primitives.store.records import JSONDict

DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class NotifyWrite:
    """Group changes and new deliveries, saved in one transaction with the alert states."""

    groups: Sequence[JSONDict] = ()  # Group.to_json() of the groups kept (inserted or replaced)
    ended: Sequence[str] = ()  # keys of groups that ended
    deliveries: Sequence[JSONDict] = field(default_factory=list)  # {receiver, env, kind, payload, created_at}

    def __bool__(self) -> bool:
        return bool(self.groups or self.ended or self.deliveries)


@dataclass(frozen=True)
class DeliveryRec:
    id: int
    receiver: str
    env: str | None
    kind: str
    status: str
    payload: JSONDict
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None
    delivered_at: float | None

    def to_json(self, with_payload: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in ("id", "receiver", "env", "kind", "status", "created_at",
                                                           "attempts", "next_attempt_at", "last_error",
                                                           "delivered_at")}
        d["title"] = self.payload.get("title")
        if with_payload:
            d["payload"] = self.payload
        return d


@dataclass(frozen=True)
class SilenceRec:
    id: int
    matchers: list[JSONDict]  # [{name, value, regex}]
    starts_at: float
    ends_at: float
    comment: str
    created_by: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": self.matchers, "starts_at": self.starts_at, "ends_at": self.ends_at,
                "comment": self.comment, "created_by": self.created_by, "created_at": self.created_at}


def _delivery(row: Any) -> DeliveryRec:
    return DeliveryRec(row.id, row.receiver, row.env, row.kind, row.status, row.payload, row.created_at,
                       row.attempts, row.next_attempt_at, row.last_error, row.delivered_at)


def _silence(row: Any) -> SilenceRec:
    return SilenceRec(row.id, row.matchers, row.starts_at, row.ends_at, row.comment, row.created_by, row.created_at)


class NotifyStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    # -- groups and the outbox, written with the decision that made them -------------------------------

    def write_notify(self, conn: sa.Connection, w: NotifyWrite) -> None:
        g = t.notify_groups
        for key in w.ended:
            conn.execute(g.delete().where(g.c.key == key))
        for d in w.groups:
            conn.execute(g.delete().where(g.c.key == d["key"]))
            conn.execute(g.insert().values(key=d["key"], next_flush_at=d["next_flush_at"], data=d))
        if w.deliveries:
            conn.execute(t.notify_deliveries.insert(), [
                {"receiver": d["receiver"], "env": d.get("env"), "kind": d["kind"], "status": "pending",
                 "payload": d["payload"], "created_at": d["created_at"], "attempts": 0,
                 "next_attempt_at": d["created_at"], "last_error": None, "delivered_at": None}
                for d in w.deliveries])

    def save_notify(self, w: NotifyWrite) -> None:
        if w:
            with self._write() as conn:
                self.write_notify(conn, w)

    def add_delivery(self, d: JSONDict) -> int:
        """One delivery (``notify test``); its id."""
        with self._write() as conn:
            result = conn.execute(t.notify_deliveries.insert().values(
                receiver=d["receiver"], env=d.get("env"), kind=d["kind"], status="pending", payload=d["payload"],
                created_at=d["created_at"], attempts=0, next_attempt_at=d["created_at"]))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def notify_groups(self) -> list[JSONDict]:
        with self._read() as conn:
            return [dict(row.data) for row in conn.execute(t.notify_groups.select())]

    # -- deliveries -------------------------------------------------------------------------------------

    def due_deliveries(self, now: float, limit: int = 50) -> list[DeliveryRec]:
        d = t.notify_deliveries
        query = (d.select().where(d.c.status == "pending", d.c.next_attempt_at <= now)
                 .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
        with self._read() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def next_delivery_at(self) -> float | None:
        d = t.notify_deliveries
        with self._read() as conn:
            value = conn.execute(sa.select(sa.func.min(d.c.next_attempt_at)).where(d.c.status == "pending")).scalar()
        return None if value is None else float(value)

    def delivery_done(self, delivery_id: int, *, at: float) -> None:
        d = t.notify_deliveries
        with self._write() as conn:
            conn.execute(d.update().where(d.c.id == delivery_id).values(
                status="delivered", delivered_at=at, attempts=d.c.attempts + 1, last_error=None))

    def delivery_failed(self, delivery_id: int, *, error: str, retry_at: float | None) -> None:
        """One failed attempt: retried at ``retry_at``, or given up (``failed``) when it is None."""
        d = t.notify_deliveries
        values: dict[str, Any] = {"attempts": d.c.attempts + 1, "last_error": error[:500]}
        values.update({"next_attempt_at": retry_at} if retry_at is not None else {"status": "failed"})
        with self._write() as conn:
            conn.execute(d.update().where(d.c.id == delivery_id).values(**values))

    def list_deliveries(self, limit: int = 50, receiver: str | None = None) -> list[DeliveryRec]:
        d = t.notify_deliveries
        query = d.select().order_by(d.c.id.desc()).limit(limit)
        if receiver is not None:
            query = query.where(d.c.receiver == receiver)
        with self._read() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def delivery(self, delivery_id: int) -> DeliveryRec | None:
        d = t.notify_deliveries
        with self._read() as conn:
            row = conn.execute(d.select().where(d.c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    # -- silences ---------------------------------------------------------------------------------------

    def add_silence(self, matchers: list[JSONDict], *, starts_at: float, ends_at: float, comment: str,
                    created_by: str, at: float) -> SilenceRec:
        with self._write() as conn:
            result = conn.execute(t.silences.insert().values(
                matchers=matchers, starts_at=starts_at, ends_at=ends_at, comment=comment, created_by=created_by,
                created_at=at))
            key = result.inserted_primary_key
            assert key is not None
            new_id = int(key[0])
        return SilenceRec(new_id, matchers, starts_at, ends_at, comment, created_by, at)

    def silences(self, *, active_at: float | None = None) -> list[SilenceRec]:
        s = t.silences
        query = s.select().order_by(s.c.id)
        if active_at is not None:
            query = query.where(s.c.starts_at <= active_at, s.c.ends_at > active_at)
        with self._read() as conn:
            return [_silence(r) for r in conn.execute(query)]

    def expire_silence(self, silence_id: int, *, at: float) -> SilenceRec:
        s = t.silences
        with self._write() as conn:
            row = conn.execute(s.select().where(s.c.id == silence_id)).first()
            if row is None:
                raise NotFound(f"no silence {silence_id}")
            if row.ends_at > at:
                conn.execute(s.update().where(s.c.id == silence_id).values(ends_at=at))
        rec = _silence(row)
        return SilenceRec(rec.id, rec.matchers, rec.starts_at, min(rec.ends_at, at), rec.comment, rec.created_by,
                          rec.created_at)
