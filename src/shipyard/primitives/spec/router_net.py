"""Router settings about the network in front of an environment: where it listens, which peers are
trusted to say who the client is, and the plain-HTTP redirect listener.

    [environments.prod.router]
    bind = "127.0.0.1"                 # default "0.0.0.0"
    trusted_proxies = ["10.0.0.0/8"]   # keep X-Forwarded-For only from these peers
    redirect_http = true               # with tls: a plain listener on http_port answering 308 to https
    http_port = 80

``RouterEnvSpec`` (spec/router.py) inherits these fields; meanings and defaults are in docs/router.md.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from shipyard.primitives.spec.base import MAX_LIST, SpecModel


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"expected an IP address to listen on (e.g. '0.0.0.0', '127.0.0.1', '::'), "
                         f"got {value!r}") from None


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"expected an address or CIDR network (e.g. '10.0.0.0/8'), got {value!r}") from None


ListenAddress = Annotated[str, AfterValidator(_address)]
Network = Annotated[str, AfterValidator(_network)]


class RouterNetSpec(SpecModel):
    bind: ListenAddress | None = None  # None: the table's bind (0.0.0.0)
    trusted_proxies: Annotated[list[Network], Field(max_length=MAX_LIST)] = []
    redirect_http: bool = False
    http_port: int = Field(default=80, ge=1, le=65535)

    @model_validator(mode="after")
    def _redirect_needs_tls(self) -> RouterNetSpec:
        if self.redirect_http and getattr(self, "tls", None) is None:
            raise ValueError("redirect_http needs tls (it redirects plain HTTP to the TLS port)")
        return self
