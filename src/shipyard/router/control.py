"""The control socket: newline-delimited JSON requests and replies on a unix socket (0600)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.router.server import Router

MAX_MESSAGE = 16 * 1024 * 1024


async def serve_control(router: Router, path: Path) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError as exc:
                    reply = {"ok": False, "error": f"invalid JSON: {exc}"}
                else:
                    reply = await router.handle(msg)
                writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(handle, str(path), limit=MAX_MESSAGE)
    finally:
        os.umask(old_umask)
    return server
