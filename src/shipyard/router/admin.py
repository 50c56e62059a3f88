"""Admin port: Prometheus text at /metrics and a liveness answer at /healthz (127.0.0.1 by default)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from shipyard.primitives.metrics import render

if TYPE_CHECKING:
    from shipyard.router.server import Router


async def serve_admin(router: Router, host: str, port: int) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            parts = head.split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 2 else b""
            if path == b"/metrics":
                body = render(router.all_series()).encode()
                status, ctype = b"200 OK", b"text/plain; version=0.0.4; charset=utf-8"
            elif path == b"/healthz":
                body, status, ctype = b"ok\n", b"200 OK", b"text/plain"
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (status, ctype, len(body), body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
