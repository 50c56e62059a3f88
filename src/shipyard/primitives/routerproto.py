"""Client side of the router control socket: newline-delimited JSON over a unix socket.

``RouterClient(path).call("set_table", table={...}, timeout=5)`` returns the reply's fields (without
``ok``) or raises ``RouterError`` with the router's message (``port 8200 is in use``);
``RouterUnavailable`` when nothing answers on the socket. ``AsyncRouterClient`` is the same for asyncio.
Each call uses its own connection, so long calls (``drain``) never hold up others. Ops and fields are
in docs/architecture.md and docs/router.md.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError

DEFAULT_TIMEOUT = 10.0
_MAX_REPLY = 64 * 1024 * 1024


class RouterError(ShipyardError):
    """The router refused or failed an operation; the message is the router's."""


class RouterUnavailable(RouterError):
    """Nothing answers on the router's control socket."""


def _encode(op: str, fields: dict[str, Any]) -> bytes:
    return json.dumps({"op": op, **fields}, separators=(",", ":")).encode() + b"\n"


def _decode(op: str, line: bytes) -> dict[str, Any]:
    if not line:
        raise RouterUnavailable(f"router closed the control connection during '{op}'")
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise RouterError(f"router sent an invalid reply to '{op}': {exc}") from exc
    if not isinstance(reply, dict):
        raise RouterError(f"router sent an invalid reply to '{op}'")
    if not reply.get("ok"):
        raise RouterError(str(reply.get("error") or f"router refused '{op}'"))
    reply.pop("ok", None)
    return reply


class RouterClient:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def call(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, fields: dict[str, Any] | None = None,
             **kw: Any) -> dict[str, Any]:
        # `fields` carries message fields whose names clash with keyword arguments (drain's `timeout`).
        fields = {**(fields or {}), **kw}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            try:
                s.connect(str(self.path))
            except OSError as exc:
                raise RouterUnavailable(f"router is not running (no answer on {self.path})") from exc
            try:
                s.sendall(_encode(op, fields))
                chunks: list[bytes] = []
                size = 0
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                    size += len(data)
                    if data.endswith(b"\n") or size > _MAX_REPLY:
                        break
            except TimeoutError as exc:
                raise RouterError(f"router did not answer '{op}' within {timeout:g}s") from exc
            except OSError as exc:
                raise RouterUnavailable(f"router connection failed during '{op}': {exc}") from exc
        finally:
            s.close()
        return _decode(op, b"".join(chunks))

    def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        return self.call("ping", timeout=timeout)


class AsyncRouterClient:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def call(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, fields: dict[str, Any] | None = None,
                   **kw: Any) -> dict[str, Any]:
        # `fields` carries message fields whose names clash with keyword arguments (drain's `timeout`).
        fields = {**(fields or {}), **kw}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path), limit=_MAX_REPLY), timeout
            )
        except (TimeoutError, OSError) as exc:
            raise RouterUnavailable(f"router is not running (no answer on {self.path})") from exc
        try:
            writer.write(_encode(op, fields))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        except TimeoutError as exc:
            raise RouterError(f"router did not answer '{op}' within {timeout:g}s") from exc
        except (OSError, ValueError) as exc:
            raise RouterUnavailable(f"router connection failed during '{op}': {exc}") from exc
        finally:
            writer.close()
        return _decode(op, line)

    async def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        return await self.call("ping", timeout=timeout)
