"""A small HTTP/1.1 server for the control API (low traffic, loopback only).

Requests are small JSON documents; a handler returns a JSON value, or an async iterator of JSON values
which is streamed as NDJSON (one line per event) and ends the connection — how the CLI follows a deploy.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shipyard.errors import ShipyardError

log = logging.getLogger("shipyard.control.api")

MAX_BODY = 1 << 20
Handler = Callable[[dict[str, Any], dict[str, str]], Awaitable[Any]]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}


class ApiServer:
    def __init__(self, token: str, routes: dict[tuple[str, str], Handler]) -> None:
        self._token = token.encode()
        self._routes = routes
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_BODY)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server:
            self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(self._one(reader, writer), timeout=None)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug in a handler must not kill the daemon
            log.exception("control API request failed")
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (TimeoutError, asyncio.LimitOverrunError):
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            await self._send(writer, 400, {"error": "malformed request line"})
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        auth = headers.get("authorization", "")
        if not (auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), self._token)):
            await self._send(writer, 401, {"error": "missing or wrong control token"})
            return
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            await self._send(writer, 413, {"error": "request too large"})
            return
        body: dict[str, Any] = {}
        if length:
            try:
                body = json.loads(await reader.readexactly(length))
            except json.JSONDecodeError:
                await self._send(writer, 400, {"error": "body is not JSON"})
                return
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        handler = self._routes.get((method, url.path))
        if handler is None:
            await self._send(writer, 404, {"error": f"no route {method} {url.path}"})
            return
        try:
            result = await handler(body, query)
        except ShipyardError as err:
            await self._send(writer, 200, {"error": str(err), "exit_code": err.exit_code})
            return
        except HttpError as err:
            await self._send(writer, err.status, {"error": str(err)})
            return
        if hasattr(result, "__aiter__"):
            await self._stream(writer, result)
        else:
            await self._send(writer, 200, result)

    async def _send(self, writer: asyncio.StreamWriter, status: int, obj: Any) -> None:
        data = json.dumps(obj, default=str).encode()
        writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, events: AsyncIterator[Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
        async for event in events:
            writer.write(json.dumps(event, default=str).encode() + b"\n")
            await writer.drain()
