"""Identities (``shipyard token``): a name, a role, optional environments and the digest of its token.

Mixed into ``Store``. The clear token is never given to the store: callers pass its SHA-256 digest and
its public id (the lookup key), so no code path here can write a token value.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shipyard.errors import BadInput, NotFound
from shipyard.primitives.store import schema as t


@dataclass(frozen=True)
class TokenRec:
    name: str
    token_id: str
    digest: str
    role: str
    envs: tuple[str, ...] | None  # None: every environment
    created_at: float
    created_by: str
    revoked_at: float | None
    last_used_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _rec(row: sa.Row[object]) -> TokenRec:
    m = row._mapping
    envs = m["envs"]
    return TokenRec(name=m["name"], token_id=m["token_id"], digest=m["digest"], role=m["role"],
                    envs=tuple(envs) if envs is not None else None, created_at=m["created_at"],
                    created_by=m["created_by"], revoked_at=m["revoked_at"], last_used_at=m["last_used_at"])


class TokenStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def add_token(self, *, name: str, token_id: str, digest: str, role: str, envs: list[str] | None,
                  created_at: float, created_by: str) -> TokenRec:
        """A new identity; a revoked one of the same name is replaced (its token stays refused)."""
        tk = t.tokens
        with self._write() as conn:
            old = conn.execute(tk.select().where(tk.c.name == name)).first()
            if old is not None and old.revoked_at is None:
                raise BadInput(f"an identity named {name!r} exists already (`shipyard token revoke {name}` first)")
            if old is not None:
                conn.execute(tk.delete().where(tk.c.name == name))
            conn.execute(tk.insert().values(name=name, token_id=token_id, digest=digest, role=role, envs=envs,
                                            created_at=created_at, created_by=created_by, revoked_at=None,
                                            last_used_at=None))
            row = conn.execute(tk.select().where(tk.c.name == name)).one()
        return _rec(row)

    def token_by_id(self, token_id: str) -> TokenRec | None:
        with self._read() as conn:
            row = conn.execute(t.tokens.select().where(t.tokens.c.token_id == token_id)).first()
        return _rec(row) if row is not None else None

    def list_tokens(self) -> list[TokenRec]:
        with self._read() as conn:
            rows = conn.execute(t.tokens.select().order_by(t.tokens.c.name)).all()
        return [_rec(r) for r in rows]

    def revoke_token(self, name: str, at: float) -> TokenRec:
        tk = t.tokens
        with self._write() as conn:
            row = conn.execute(tk.select().where(tk.c.name == name)).first()
            if row is None:
                raise NotFound(f"no identity named {name!r} (see `shipyard token list`)")
            if row.revoked_at is None:
                conn.execute(tk.update().where(tk.c.name == name).values(revoked_at=at))
            row = conn.execute(tk.select().where(tk.c.name == name)).one()
        return _rec(row)

    def touch_token(self, name: str, at: float) -> None:
        with self._write() as conn:
            conn.execute(t.tokens.update().where(t.tokens.c.name == name).values(last_used_at=at))
