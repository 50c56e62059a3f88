"""The remote listener's settings (``[control]``, primitives/spec/control.py) checked when the control plane
starts: the address is free, the certificate and key load, the key is the project user's alone.

A key file that others may read (any group/other bit) is refused, not fixed: it may have been copied
already, so the user should know and make a new one (docs/security.md). Every problem is a ``BadInput``
naming its key path (``control.tls.key``), so ``shipyard up`` exits 2 before anything is started.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import BadInput
from shipyard.primitives.spec.control import ControlSpec


@dataclass(frozen=True)
class RemoteListener:
    host: str
    port: int
    tls: ssl.SSLContext | None  # None only with `insecure = true` or a loopback listen address

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def remote_listener(control: ControlSpec, project: Path) -> RemoteListener | None:
    if control.address is None:
        return None
    host, port = control.address
    if port:
        _check_free(host, port)
    context = None
    if control.tls is not None:
        cert, key = control.tls.paths(project)
        _check_file(cert, "control.tls.cert")
        _check_file(key, "control.tls.key")
        mode = stat.S_IMODE(key.stat().st_mode)
        if mode & 0o077:
            raise BadInput(f"control.tls.key: {key} is readable by others (mode {mode:04o}); it may have been "
                           f"copied: make a new key, then chmod 600 it")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise BadInput(f"control.tls: {cert} and {key} do not load as a PEM certificate and its key "
                           f"({exc.reason or exc})") from None
    return RemoteListener(host, port, context)


def _check_file(path: Path, key: str) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        raise BadInput(f"{key}: cannot read {path} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{key}: {path} is not a file")
    if not os.access(path, os.R_OK):
        raise BadInput(f"{key}: {path} is not readable by this user")


def _check_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BadInput(f"control.listen: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's listener will
        try:
            probe.bind(addr)
        except OSError as exc:
            raise BadInput(f"control.listen: {host}:{port} is not available ({exc.strerror})") from None
