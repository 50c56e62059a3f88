"""Per-environment router settings (owned by the router work).

    [environments.prod.router]
    max_body_size = 50_000_000
    header_timeout = "10s"
    rate_limit = { rps = 100, burst = 200, paths = [{ prefix = "/login", rps = 5, burst = 10 }] }
    security_headers = { "X-Frame-Options" = "SAMEORIGIN" }   # replaces the defaults; {} turns them off
    tls = { cert = "certs/prod.pem", key = "certs/prod.key" }
    sticky = { cookie = "shipyard_release" }
    access_log = { sample = "10%" }

The control plane sends ``table_settings(env)`` as the routing table's ``settings``; the router validates
it with this same model, so both sides agree on names, units and defaults. Meanings are in docs/router.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from shipyard.primitives.spec.base import Percent, SpecModel, duration_upto
from shipyard.primitives.spec.durations import DAY
from shipyard.primitives.spec.router_net import RouterNetSpec
from shipyard.primitives.spec.sizes import Size

# Environments that get no security headers unless asked for: the rest (staging, prod, ...) get them.
DEV_ENVIRONMENTS = frozenset({"dev", "development", "local", "test"})
DEFAULT_SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
HSTS_VALUE = "max-age=31536000"

# Router timeouts: at most a day each (a connection held longer is a leak, not a request).
Timeout = Annotated[float, duration_upto(DAY)]
MAX_RPS = 1_000_000.0
MAX_BURST = 10_000_000


def default_security_headers(env_name: str) -> dict[str, str]:
    return {} if env_name in DEV_ENVIRONMENTS else dict(DEFAULT_SECURITY_HEADERS)


class PathLimitSpec(SpecModel):
    prefix: str = Field(min_length=1)
    rps: float = Field(gt=0, le=MAX_RPS)
    burst: int = Field(default=0, ge=0, le=MAX_BURST)


class RateLimitSpec(SpecModel):
    """Token bucket per client IP: ``rps`` refill, ``burst`` capacity (0 → max(1, 2 × rps))."""

    rps: float = Field(gt=0, le=MAX_RPS)
    burst: int = Field(default=0, ge=0, le=MAX_BURST)
    paths: list[PathLimitSpec] = Field(default=[], max_length=100)


class TlsSpec(SpecModel):
    cert: str
    key: str
    hsts: bool = True


class StickySpec(SpecModel):
    cookie: str | None = None
    header: str | None = None

    @model_validator(mode="after")
    def _one(self) -> StickySpec:
        if (self.cookie is None) == (self.header is None):
            raise ValueError("sticky needs exactly one of 'cookie' or 'header'")
        return self


class AccessLogSpec(SpecModel):
    enabled: bool = True
    sample: Percent = 1.0


class RouterEnvSpec(RouterNetSpec):  # bind, trusted_proxies, redirect_http: spec/router_net.py
    max_request_line: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    max_header_size: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=8, le=10_000)
    max_body_size: Size = Field(default=100 * 1024 * 1024, ge=0, le=1 << 40)  # 0: unlimited
    header_timeout: Timeout = 10.0
    idle_timeout: Timeout = 60.0
    body_timeout: Timeout = 60.0  # between two reads of a request body
    body_deadline: Timeout = 300.0  # for the whole request body, from the end of its head
    connect_timeout: Timeout = 5.0
    response_timeout: Timeout = 60.0  # for the response head, once the instance has all the body or stops taking it
    max_pause: Timeout = 30.0
    rate_limit: RateLimitSpec | None = None
    security_headers: Annotated[dict[str, str], Field(max_length=100)] | None = None  # None: defaults for the environment
    tls: TlsSpec | None = None
    sticky: StickySpec | None = None
    access_log: AccessLogSpec = AccessLogSpec()
    # Router processes for this environment's port (SO_REUSEPORT); the control plane's business, not sent
    # in the table. More than the machine's cores only adds context switches.
    workers: int = Field(default=1, ge=1, le=16)

    def resolved_security_headers(self, env_name: str) -> dict[str, str]:
        headers = (
            default_security_headers(env_name) if self.security_headers is None else dict(self.security_headers)
        )
        if self.tls is not None and self.tls.hsts and headers and "Strict-Transport-Security" not in headers:
            headers["Strict-Transport-Security"] = HSTS_VALUE
        return headers

    def table_settings(self, env_name: str) -> dict[str, Any]:
        """The ``settings`` object of a routing table (JSON), security headers resolved for ``env_name``.

        Only values that differ from the defaults are sent (the router fills in the same defaults), so a
        control plane that knows a newer setting still drives a running older router as long as that
        setting is left alone: the control plane reuses a live router across its own restarts."""
        data = self.model_dump(mode="json", exclude={"sticky", "workers"}, exclude_defaults=True)
        data["security_headers"] = self.resolved_security_headers(env_name)
        return data

    def table_sticky(self) -> dict[str, str] | None:
        """The routing table's ``sticky`` object."""
        return None if self.sticky is None else self.sticky.model_dump(exclude_none=True)
