"""``[control]``: where the control API listens for remote clients, and its TLS certificate.

    [control]
    listen = "0.0.0.0:7420"                     # port 0: any free port (control.json says which)
    tls = { cert = "certs/control.pem", key = "certs/control.key" }   # paths relative to the project

Without ``listen`` the API is on 127.0.0.1 only, on a free port, as it always was; with it, that loopback
listener stays (the local CLI keeps using it) and a second one serves ``listen``. A bearer token must never
cross a network in clear: a ``listen`` host that is not loopback needs ``tls`` unless ``insecure = true``
says, in the file, that something else (a TLS-terminating proxy in front) protects the link — the CLI itself
sends ``http://`` to loopback addresses only (an SSH tunnel).
The files are read when the control plane starts (control/tlsconfig.py checks them).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, StrictBool, model_validator

from shipyard.primitives.spec.base import SpecModel

_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1 (a name is never assumed to be loopback)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(value: str) -> str:
    m = _LISTEN.match(value)
    if m is None or int(m.group("port")) > 65535:
        raise ValueError(f"expected host:port such as '0.0.0.0:7420' or '[::]:7420', got {value!r}")
    return value


def _relative_file(value: str) -> str:
    if not value or "\x00" in value:
        raise ValueError("expected a file path (relative to the project, or absolute)")
    return value


class TlsSpec(SpecModel):
    cert: Annotated[str, AfterValidator(_relative_file)]  # PEM: the certificate, then its chain
    key: Annotated[str, AfterValidator(_relative_file)]   # PEM private key; mode 0600 (checked at start)

    def paths(self, project: Path) -> tuple[Path, Path]:
        return project / self.cert, project / self.key


class ControlSpec(SpecModel):
    listen: Annotated[str, AfterValidator(_host_port)] | None = None
    tls: TlsSpec | None = None
    insecure: StrictBool = False  # plain HTTP on a non-loopback address: only with this, written in the file

    @model_validator(mode="after")
    def _tls_beyond_loopback(self) -> ControlSpec:
        if self.listen is not None and self.tls is None and not self.insecure \
                and not is_loopback(self.address[0]):  # type: ignore[index]
            raise ValueError(
                f"listen = {self.listen!r} is reachable from other machines: add tls = {{ cert = \"…\", "
                "key = \"…\" } (a bearer token must not travel in clear), or insecure = true if something "
                "else protects the link")
        if self.tls is not None and self.listen is None:
            raise ValueError("tls is for the listen address: add listen = \"host:port\"")
        return self

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)
