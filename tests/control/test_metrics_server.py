"""The metrics endpoint's HTTP server: /metrics served, anything else 404, a taken port → a free one."""

from __future__ import annotations

import asyncio
import socket

from shipyard.control.metrics_export import MetricsServer


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def test_serves_metrics_and_falls_back_to_a_free_port() -> None:
    async def render() -> str:
        return "shipyard_up 1.0\n"

    async def go() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            server = MetricsServer(render)
            port = await server.start("127.0.0.1", busy)
            try:
                assert port != busy
                ok = await _get(port, "/metrics")
                assert ok.startswith(b"HTTP/1.1 200 OK") and b"version=0.0.4" in ok
                assert ok.endswith(b"\r\n\r\nshipyard_up 1.0\n")
                assert (await _get(port, "/")).startswith(b"HTTP/1.1 404")
            finally:
                await server.close()

    asyncio.run(go())
