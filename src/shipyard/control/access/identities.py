"""Identities and their tokens.

A token is ``sy_<id>_<secret>``: 8 random bytes of public id (hex, the lookup key) and 32 of secret
(256 bits, urlsafe base64). Only SHA-256 of the whole token is stored; a presented token is found by its
id and its digest compared with ``hmac.compare_digest``. The clear token exists only in the answer to
``token create`` (shown once). The project's ``.shipyard/token`` is the admin identity ``local``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from shipyard.control.access.roles import ROLES, check_role
from shipyard.errors import BadInput
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store
from shipyard.primitives.store.tokens import TokenRec

LOCAL = "local"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_TOKEN = re.compile(r"^sy_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    envs: tuple[str, ...] | None = None  # None: every environment
    said: str | None = None  # who the client says it runs for (SHIPYARD_PERFORMER / the OS user)

    def may(self, cap: str) -> bool:
        return cap in ROLES[self.role]

    def may_env(self, env: str) -> bool:
        return self.envs is None or env in self.envs

    @property
    def performer(self) -> str:
        """Recorded with every action: ``local (alice)``, ``ci-bot (octocat)``, or the name alone."""
        return f"{self.name} ({self.said})" if self.said else self.name

    def with_said(self, said: object) -> Identity:
        if not isinstance(said, str) or not said.strip():
            return self
        name = "".join(c for c in said.strip() if c.isprintable())[:64]
        return Identity(self.name, self.role, self.envs, name)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    def __init__(self, store: Store, clock: Clock, local_token: str) -> None:
        self.store, self.clock = store, clock
        self._local = digest(local_token)

    def identify(self, token: str) -> Identity | None:
        """The identity a presented token names; None when unknown, wrong or revoked."""
        if hmac.compare_digest(digest(token), self._local):
            return Identity(LOCAL, "admin")
        m = _TOKEN.match(token)
        if m is None:
            return None
        rec = self.store.token_by_id(m.group(1))
        if rec is None or not hmac.compare_digest(digest(token), rec.digest) or rec.revoked:
            return None
        return Identity(rec.name, rec.role, rec.envs)

    def create(self, name: str, role: str, envs: list[str] | None, by: str) -> tuple[TokenRec, str]:
        """A new identity and its token (the only time the token exists in clear)."""
        if not NAME.match(name) or name == LOCAL:
            raise BadInput(f"NAME: {name[:70]!r} is not a valid identity name (lower-case letters, digits, '.', '_', "
                           "'-'; not 'local', the project's own token)")
        check_role(role)
        token_id = secrets.token_hex(8)
        token = f"sy_{token_id}_{secrets.token_urlsafe(32)}"
        rec = self.store.add_token(name=name, token_id=token_id, digest=digest(token), role=role, envs=envs,
                                   created_at=self.clock.time(), created_by=by)
        return rec, token


def token_json(rec: TokenRec) -> dict[str, Any]:
    """A token's public record: never its value or digest."""
    return {"name": rec.name, "role": rec.role, "envs": list(rec.envs) if rec.envs is not None else None,
            "created_at": rec.created_at, "created_by": rec.created_by, "revoked": rec.revoked,
            "revoked_at": rec.revoked_at, "id": rec.token_id}
