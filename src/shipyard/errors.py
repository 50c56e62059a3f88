"""The one exception tree of shipyard.

Every failure a user can cause or meet is a ``ShipyardError`` carrying a message meant for people and
the process exit code the CLI returns. Third-party errors are translated where they enter
(``raise ConfigError(...) from exc``); the CLI prints ``str(err)``, never a traceback.

Exit codes (documented in the README):
  0 success · 1 deployment failed / rolled back / objective missed · 2 bad input
  3 refused (another deployment holds the lock) · 4 not permitted (token unknown, role or environment)
  99 verify no-go
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    exit_code = 1
    # What a failed deploy step records beside the message (a canary's failing conditions, a verify summary).
    detail: dict[str, Any] | None = None

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Several independent problems (e.g. config validation) are reported one per line.
        self.problems = problems or []

    def __str__(self) -> str:
        if self.problems:
            return "\n".join([self.message, *self.problems]) if self.message else "\n".join(self.problems)
        return self.message


class BadInput(ShipyardError):
    """Anything the user asked for that cannot be: bad config, unknown env, missing ref..."""

    exit_code = 2


class ConfigError(BadInput):
    """shipyard.toml (or another config input) is invalid."""


class NotFound(BadInput):
    """A named thing (environment, release, ref, backup) does not exist."""


class Refused(ShipyardError):
    """Refused because something else holds the resource (deployment lock)."""

    exit_code = 3


class LockHeld(Refused):
    pass


class NotPermitted(ShipyardError):
    """The caller's identity may not do this: its role or its environments (HTTP 403); also a Kubernetes
    API server's 403 for the credentials in use."""

    exit_code = 4
    http_status = 403


class Unauthenticated(NotPermitted):
    """No identity: the token is missing, unknown or revoked (HTTP 401)."""

    http_status = 401


class RateLimited(NotPermitted):
    """Too many failed token attempts from one address (HTTP 429, Retry-After)."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeployFailed(ShipyardError):
    exit_code = 1


class IntegrityError(ShipyardError):
    """Stored data failed verification (checksums, authentication tags)."""

    exit_code = 1


class NoGo(ShipyardError):
    """Load verification verdict was no-go."""

    exit_code = 99


class ControlPlaneUnavailable(ShipyardError):
    exit_code = 1
