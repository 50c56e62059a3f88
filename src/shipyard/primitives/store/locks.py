"""Manual locks (``shipyard lock``): one row per environment; while it exists, deploys are refused.

Mixed into ``Store``, which provides the connections. Taking a lock is one insert, so of two operators
racing exactly one gets it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shipyard.errors import Refused
from shipyard.primitives.store import schema as t


@dataclass(frozen=True)
class ManualLockRec:
    env: str
    holder: str
    message: str
    acquired_at: float


class LockStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def manual_lock(self, env: str) -> ManualLockRec | None:
        with self._read() as conn:
            row = conn.execute(t.manual_locks.select().where(t.manual_locks.c.env == env)).first()
        return ManualLockRec(row.env, row.holder, row.message, row.acquired_at) if row is not None else None

    def manual_locks(self) -> list[ManualLockRec]:
        with self._read() as conn:
            rows = conn.execute(t.manual_locks.select().order_by(t.manual_locks.c.env)).all()
        return [ManualLockRec(r.env, r.holder, r.message, r.acquired_at) for r in rows]

    def acquire_manual_lock(self, env: str, holder: str, message: str, at: float) -> ManualLockRec:
        """Take ``env``'s lock, or raise ``Refused`` naming who holds it."""
        try:
            with self._write() as conn:
                conn.execute(t.manual_locks.insert().values(env=env, holder=holder, message=message,
                                                            acquired_at=at))
        except sa.exc.IntegrityError:
            held = self.manual_lock(env)
            who = f"{held.holder}: {held.message!r}" if held else "someone"
            raise Refused(f"{env} is already locked by {who}") from None
        return ManualLockRec(env, holder, message, at)

    def release_manual_lock(self, env: str) -> ManualLockRec | None:
        """Release ``env``'s lock; the lock that was held (None: there was none)."""
        held = self.manual_lock(env)
        with self._write() as conn:
            conn.execute(t.manual_locks.delete().where(t.manual_locks.c.env == env))
        return held
