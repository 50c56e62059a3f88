"""Listening sockets passed between processes over SCM_RIGHTS: from a running router to its replacement
(``--replace``), and to the control plane, which holds them so a router that dies does not take its ports
with it: connections queue in the backlog until the restarted router, given the same sockets, accepts them.

Two routers bound to one port with SO_REUSEPORT are two sockets: closing the old one resets the
connections still in its accept queue (one in a couple of thousand under load, measured). Passing the
old router's listening sockets to the new one instead makes both serve the *same* sockets; the old
router's exit then closes only its descriptors, and no queued connection is lost. Blocking code: the new
router asks before its event loop serves, the old one sends from an executor thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from shipyard.primitives.routerproto import RouterClient

Listener = tuple[str, int]
MAX_LISTENERS = 256


def receive_listeners(control_path: Path, timeout: float = 10.0) -> dict[Listener, socket.socket]:
    """Ask the router answering on ``control_path`` for its listening sockets; ``{(host, port): socket}``."""
    tmp = control_path.with_name(f".handover-{os.getpid()}.sock")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)  # only our user may connect, like the control socket
        try:
            srv.bind(str(tmp))
        finally:
            os.umask(old_umask)
        srv.listen(1)
        srv.settimeout(timeout)
        RouterClient(control_path).call("hand_over", timeout=timeout, fields={"to": str(tmp)})
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(timeout)
            msg, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, MAX_LISTENERS)
        meta = json.loads(msg.decode())
        out: dict[Listener, socket.socket] = {}
        for (host, port), fd in zip(meta["listeners"], fds, strict=True):
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            out[(str(host), int(port))] = sock
        return out
    finally:
        srv.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def parse_listener_arg(value: str) -> tuple[Listener, int]:
    """``HOST:PORT:FD`` (the router's ``--listener``; HOST may be an IPv6 address) → ``((host, port), fd)``."""
    host, port, fd = value.rsplit(":", 2)
    return (host, int(port)), int(fd)


def send_listeners(to: str, listeners: list[tuple[str, int, int]], timeout: float = 10.0) -> None:
    """Send ``(host, port, fd)`` listening sockets to the replacement waiting on the unix socket ``to``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(to)
        meta = json.dumps({"listeners": [[h, p] for h, p, _ in listeners]}).encode()
        socket.send_fds(s, [meta], [fd for _, _, fd in listeners])
