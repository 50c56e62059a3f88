"""The metric history and alert states in the state database (``Store`` mixes these in).

Points are plain mappings of the ``metric_points`` columns (the engine's ``alerting.history.Point``
fields); ``hist`` is ``{bucket_index: count}``, kept as ``"index:count,..."`` text — the shortest form
that both backends store as is. An alert state is saved together with the event of its transition, in
one transaction: a restart finds both or neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from shipyard.primitives.store import schema as t
from shipyard.primitives.store.notify import NotifyWrite
from shipyard.primitives.store.records import EventRec, JSONDict
from shipyard.primitives.store.rows import to_event

RESOLUTIONS = ("raw", "minute")
_POINT_COLUMNS = tuple(c.name for c in t.metric_points.columns)
_KEY = ("resolution", "env", "release", "t")


def encode_hist(hist: Mapping[int, int] | None) -> str | None:
    if hist is None:
        return None
    return ",".join(f"{i}:{n}" for i, n in sorted(hist.items()) if n)


def decode_hist(text: str | None) -> dict[int, int] | None:
    if text is None:
        return None
    out: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        i, n = part.split(":")
        out[int(i)] = int(n)
    return out


class HistoryStore:
    """Metric points, alert states, events by time. Mixed into ``Store``, which provides the plumbing."""

    if TYPE_CHECKING:
        @property
        def backend(self) -> str: ...

        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

        def write_notify(self, conn: sa.Connection, w: NotifyWrite) -> None: ...

    def _insert(self) -> Any:
        return pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert

    # -- metric points --------------------------------------------------------------------------------

    def write_points(self, resolution: str, points: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace points (the same env × release × t written twice keeps the newer)."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        if not points:
            return
        rows = [{**{c: p.get(c) for c in _POINT_COLUMNS if c not in ("resolution", "hist")},
                 "resolution": resolution, "hist": encode_hist(p.get("hist"))} for p in points]
        stmt = self._insert()(t.metric_points)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={c: stmt.excluded[c] for c in _POINT_COLUMNS if c not in _KEY})
        with self._write() as conn:
            conn.execute(stmt, rows)

    def read_points(self, resolution: str, env: str, since: float, until: float | None = None,
                    release: str | None = None, hist_since: float | None = None) -> list[dict[str, Any]]:
        """Points with ``since <= t < until``, oldest first; with ``hist_since``, only points from then on
        carry their histogram (decoding it is most of a read's cost)."""
        mp = t.metric_points
        query = (mp.select().where(mp.c.resolution == resolution, mp.c.env == env, mp.c.t >= int(since))
                 .order_by(mp.c.t, mp.c.release))
        if until is not None:
            query = query.where(mp.c.t < int(until))
        if release is not None:
            query = query.where(mp.c.release == release)
        cut = int(hist_since) if hist_since is not None else None
        with self._read() as conn:
            return [_point(row, cut) for row in conn.execute(query)]

    def newest_point_t(self, resolution: str, env: str | None = None) -> int | None:
        mp = t.metric_points
        query = sa.select(sa.func.max(mp.c.t)).where(mp.c.resolution == resolution)
        if env is not None:
            query = query.where(mp.c.env == env)
        with self._read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def point_envs(self, resolution: str) -> list[str]:
        mp = t.metric_points
        with self._read() as conn:
            return list(conn.execute(sa.select(mp.c.env).where(mp.c.resolution == resolution).distinct()).scalars())

    def prune_points(self, resolution: str, before: float) -> int:
        mp = t.metric_points
        with self._write() as conn:
            result = conn.execute(mp.delete().where(mp.c.resolution == resolution, mp.c.t < int(before)))
            return int(result.rowcount or 0)

    # -- alert states ---------------------------------------------------------------------------------

    def alert_states(self) -> list[JSONDict]:
        with self._read() as conn:
            return [{**row.data, "rule": row.rule, "env": row.env, "state": row.state}
                    for row in conn.execute(t.alert_states.select())]

    def save_alert_states(self, states: Sequence[JSONDict], events: Sequence[JSONDict] = (),
                          notify: NotifyWrite | None = None) -> None:
        """Alert states, the events of their transitions (``{env, kind, message, data, at}``) and what they
        change in notifications (groups, new deliveries: store/notify.py), at once."""
        if not states and not events and not notify:
            return
        with self._write() as conn:
            for s in states:
                stmt = self._insert()(t.alert_states).values(
                    rule=s["rule"], env=s["env"], state=s["state"], changed_at=s.get("changed_at"),
                    data={k: v for k, v in s.items() if k not in ("rule", "env", "state")})
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["rule", "env"],
                    set_={c: stmt.excluded[c] for c in ("state", "data", "changed_at")}))
            if events:
                conn.execute(t.events.insert(), [dict(e) for e in events])
            if notify:
                self.write_notify(conn, notify)

    def delete_alert_states(self, keys: Sequence[tuple[str, str]]) -> None:
        a = t.alert_states
        with self._write() as conn:
            for rule, env in keys:
                conn.execute(a.delete().where(a.c.rule == rule, a.c.env == env))

    # -- what the Prometheus endpoint reads on each scrape (aggregates, no plans or logs) -----------------

    def deployment_summary(self) -> list[tuple[str, str, str, bool, float, float | None]]:
        """Every deployment as ``(env, kind, status, has_reason, started_at, finished_at)``."""
        d = t.deployments
        query = sa.select(d.c.env, d.c.kind, d.c.status, d.c.reason.is_not(None), d.c.started_at, d.c.finished_at)
        with self._read() as conn:
            return [(r[0], r[1], r[2], bool(r[3]), float(r[4]), r[5]) for r in conn.execute(query)]

    def backup_success_times(self) -> dict[tuple[str, str], float]:
        """(env, source) → end of its newest successful backup run."""
        b = t.backup_runs
        end = sa.func.coalesce(b.c.finished_at, b.c.started_at)
        query = (sa.select(b.c.env, b.c.source, sa.func.max(end)).where(b.c.status == "ok", b.c.source != "*")
                 .group_by(b.c.env, b.c.source))
        with self._read() as conn:
            return {(r[0], r[1]): float(r[2]) for r in conn.execute(query)}

    # -- events by time -------------------------------------------------------------------------------

    def events_since(self, since: float, env: str | None = None, limit: int = 1000) -> list[EventRec]:
        """Events at or after ``since``, oldest first (the newest ``limit`` of them)."""
        e = t.events
        query = e.select().where(e.c.at >= since).order_by(e.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(e.c.env == env)
        with self._read() as conn:
            return [to_event(row) for row in reversed(list(conn.execute(query)))]


def _point(row: sa.Row[Any], hist_since: int | None) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("resolution")
    d["hist"] = decode_hist(d["hist"]) if hist_since is None or d["t"] >= hist_since else None
    return d
