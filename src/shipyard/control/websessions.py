"""Browser sessions of the dashboard: one-time login codes and session ids, each with its CSRF token.

Kept in memory only (a restart of the control plane logs everyone out); ids and codes are 256-bit random,
compared in constant time, never logged. A code is good once, for 5 minutes; a session for 8 hours.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Generic, TypeVar

from shipyard.primitives.clock import Clock

T = TypeVar("T")
CODE_TTL_S = 300.0
SESSION_TTL_S = 8 * 3600.0
MAX_SESSIONS = 1000


@dataclass(frozen=True)
class WebSession(Generic[T]):
    who: T
    csrf: str
    expires: float


class WebSessions(Generic[T]):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._codes: dict[str, tuple[T, float]] = {}
        self._sessions: dict[str, WebSession[T]] = {}

    def new_code(self, who: T) -> str:
        now = self.clock.time()
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = (who, now + CODE_TTL_S)
        return code

    def redeem(self, code: str) -> T | None:
        """The identity a code was made for, once; None when unknown, used or expired."""
        found = self._codes.pop(code, None)
        return found[0] if found is not None and found[1] > self.clock.time() else None

    def open(self, who: T) -> tuple[str, WebSession[T]]:
        now = self.clock.time()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
        sid = secrets.token_urlsafe(32)
        session = WebSession(who, secrets.token_urlsafe(32), now + SESSION_TTL_S)
        self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> WebSession[T] | None:
        session = self._sessions.get(sid or "")
        if session is None or session.expires <= self.clock.time():
            return None
        return session

    def close(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)

    @staticmethod
    def csrf_ok(session: WebSession[T], given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())
