"""Incidents with their timestamped updates, scheduled maintenance and synthetic check minutes (revision
0009; the status page, control/statuspage). Mixed into ``Store``, which provides the connections."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.errors import NotFound
from shipyard.primitives.store import schema as t


@dataclass(frozen=True)
class IncidentUpdateRec:
    status: str
    body: str
    at: float


@dataclass(frozen=True)
class IncidentRec:
    id: int
    title: str
    impact: str
    status: str
    components: tuple[str, ...]
    created_at: float
    updated_at: float
    resolved_at: float | None
    performer: str
    updates: tuple[IncidentUpdateRec, ...] = field(default=())  # newest first


@dataclass(frozen=True)
class MaintenanceRec:
    id: int
    env: str
    message: str
    starts_at: float
    ends_at: float
    switch: bool
    allow: tuple[str, ...]
    notified: tuple[str, ...]
    switched: bool
    cancelled_at: float | None
    created_at: float
    performer: str


class IncidentStore:
    if TYPE_CHECKING:
        @property
        def backend(self) -> str: ...

        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    # -- incidents ------------------------------------------------------------------------------------

    def open_incident(self, title: str, impact: str, components: Sequence[str], body: str, at: float,
                      performer: str) -> int:
        with self._write() as conn:
            result = conn.execute(t.incidents.insert().values(
                title=title, impact=impact, status="investigating", components=list(components),
                created_at=at, updated_at=at, resolved_at=None, performer=performer))
            assert result.inserted_primary_key is not None
            incident_id = int(result.inserted_primary_key[0])
            conn.execute(t.incident_updates.insert().values(
                incident_id=incident_id, status="investigating", body=body, at=at, performer=performer))
        return incident_id

    def update_incident(self, incident_id: int, status: str, body: str, at: float, performer: str,
                        impact: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": at,
                                  "resolved_at": at if status == "resolved" else None}
        if impact is not None:
            values["impact"] = impact
        with self._write() as conn:
            done = conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id).values(**values))
            if not done.rowcount:
                raise NotFound(f"no incident {incident_id} (see 'shipyard incident list')")
            conn.execute(t.incident_updates.insert().values(
                incident_id=incident_id, status=status, body=body, at=at, performer=performer))

    def incidents(self, since: float | None = None, unresolved: bool = False) -> list[IncidentRec]:
        """Incidents updated since ``since`` (or unresolved), newest first, with their updates."""
        inc, upd = t.incidents, t.incident_updates
        query = inc.select().order_by(inc.c.id.desc())
        if since is not None:
            query = query.where(sa.or_(inc.c.updated_at >= since, inc.c.resolved_at.is_(None)))
        if unresolved:
            query = query.where(inc.c.resolved_at.is_(None))
        with self._read() as conn:
            rows = conn.execute(query).all()
            ids = [r.id for r in rows]
            updates: dict[int, list[IncidentUpdateRec]] = {}
            if ids:
                for u in conn.execute(upd.select().where(upd.c.incident_id.in_(ids)).order_by(upd.c.id.desc())):
                    updates.setdefault(u.incident_id, []).append(IncidentUpdateRec(u.status, u.body, u.at))
        return [IncidentRec(r.id, r.title, r.impact, r.status, tuple(r.components), r.created_at, r.updated_at,
                            r.resolved_at, r.performer, tuple(updates.get(r.id, ()))) for r in rows]

    def incident(self, incident_id: int) -> IncidentRec:
        found = [i for i in self.incidents() if i.id == incident_id]
        if not found:
            raise NotFound(f"no incident {incident_id} (see 'shipyard incident list')")
        return found[0]

    # -- scheduled maintenance ------------------------------------------------------------------------

    def add_maintenance(self, env: str, message: str, starts_at: float, ends_at: float, switch: bool,
                        allow: Sequence[str], at: float, performer: str) -> int:
        with self._write() as conn:
            result = conn.execute(t.maintenances.insert().values(
                env=env, message=message, starts_at=starts_at, ends_at=ends_at, switch=switch, allow=list(allow),
                notified=[], switched=False, cancelled_at=None, created_at=at, performer=performer))
            assert result.inserted_primary_key is not None
            return int(result.inserted_primary_key[0])

    def maintenances(self, since: float | None = None) -> list[MaintenanceRec]:
        """Maintenance not cancelled that ends after ``since``, soonest first."""
        m = t.maintenances
        query = m.select().where(m.c.cancelled_at.is_(None)).order_by(m.c.starts_at, m.c.id)
        if since is not None:
            query = query.where(m.c.ends_at >= since)
        with self._read() as conn:
            return [_maintenance(r) for r in conn.execute(query)]

    def mark_maintenance(self, maintenance_id: int, *, notified: Sequence[str] | None = None,
                         switched: bool | None = None, cancelled_at: float | None = None,
                         ends_at: float | None = None) -> None:
        values: dict[str, Any] = {}
        if ends_at is not None:
            values["ends_at"] = ends_at
        if notified is not None:
            values["notified"] = list(notified)
        if switched is not None:
            values["switched"] = switched
        if cancelled_at is not None:
            values["cancelled_at"] = cancelled_at
        with self._write() as conn:
            done = conn.execute(t.maintenances.update().where(t.maintenances.c.id == maintenance_id).values(**values))
            if not done.rowcount:
                raise NotFound(f"no scheduled maintenance {maintenance_id}")

    # -- synthetic checks -----------------------------------------------------------------------------

    def add_check_result(self, component: str, minute: int, ok: bool) -> None:
        c = t.check_minutes
        with self._write() as conn:
            done = conn.execute(c.update().where(c.c.component == component, c.c.t == minute)
                                .values(total=c.c.total + 1, ok=c.c.ok + int(ok)))
            if not done.rowcount:
                conn.execute(c.insert().values(component=component, t=minute, total=1, ok=int(ok)))

    def check_minutes(self, component: str, since: float) -> list[tuple[int, int, int]]:
        """(minute, total, ok) of ``component`` from ``since`` on."""
        c = t.check_minutes
        with self._read() as conn:
            rows = conn.execute(sa.select(c.c.t, c.c.total, c.c.ok)
                                .where(c.c.component == component, c.c.t >= int(since)).order_by(c.c.t))
            return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def _maintenance(r: sa.Row[Any]) -> MaintenanceRec:
    return MaintenanceRec(r.id, r.env, r.message, r.starts_at, r.ends_at, bool(r.switch), tuple(r.allow),
                          tuple(r.notified), bool(r.switched), r.cancelled_at, r.created_at, r.performer)
