"""A small HTTP/1.1 server for the control API (low traffic): on loopback, and on ``[control] listen``
with TLS for remote clients (the same routes and token check on both).

Requests are small JSON documents; a handler returns a JSON value, or an async iterator of JSON values
which is streamed as NDJSON (one line per event) and ends the connection — how the CLI follows a deploy.

Every request is answered, never dropped: a malformed head, a Content-Length that is not a whole number, a
body that is not a UTF-8 JSON object → 400; a head or body that does not arrive within 10 s → 408; a head
over 64 KiB → 431, a body over 1 MiB → 413; a handler failing unexpectedly → 500 (logged). Errors are
``{"error", "exit_code"}`` documents, the shape the CLI prints (docs/security.md).

Access (docs/access.md): the ``Gate`` names the caller from its bearer token (unknown or revoked → 401, too
many failures from one address → 429 with Retry-After) and checks the route against its role and
environments (→ 403), before the handler runs; the handler gets the caller as its third argument.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from shipyard.errors import ShipyardError

log = logging.getLogger("shipyard.control.api")

MAX_BODY = 1 << 20
MAX_HEAD = 64 * 1024
# The CLI sends its whole request at once; a client that stalls longer than this is answered 408.
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
C = TypeVar("C")
# (body, query, caller) → a JSON value, or an async iterator of them (streamed as NDJSON).
Handler = Callable[[dict[str, Any], dict[str, str], C], Awaitable[Any]]


class Gate(Protocol[C]):
    def identify(self, bearer: str | None, client: str) -> C:
        """The caller of a token (raise a ShipyardError with ``http_status`` 401 or 429 if none)."""

    def authorize(self, who: C, method: str, path: str, body: dict[str, Any], query: dict[str, str]) -> C:
        """The caller as the handler gets it; raise a ShipyardError with ``http_status`` 403 if refused."""


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
            429: "Too Many Requests",
            431: "Request Header Fields Too Large", 500: "Internal Server Error"}


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "null"



@dataclass(frozen=True)
class Upgrade:
    """A handler's answer that takes the connection over after ``101 Switching Protocols`` (the remote
    terminal of ``shipyard run -i``): ``serve`` owns the reader and writer until it returns."""

    protocol: str
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ApiServer(Generic[C]):
    def __init__(self, gate: Gate[C], routes: dict[tuple[str, str], Handler[C]]) -> None:
        self._gate = gate
        self._routes = routes
        self._servers: list[asyncio.Server] = []

    async def start(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port`` (0: any free port; returned) — called once per listener: the loopback one
        the local CLI uses, and ``[control] listen`` (with TLS) for remote clients."""
        server = await asyncio.start_server(self._client, host, port, limit=MAX_HEAD, ssl=tls,
                                            ssl_handshake_timeout=HEAD_TIMEOUT if tls else None)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that went away, or spoke TLS badly
        except Exception:  # a bug in a handler must not kill the daemon
            log.exception("control API request failed")
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, target, headers = await self._head(reader)
            auth = headers.get("authorization", "")
            peer = writer.get_extra_info("peername")
            # Identified before the body is read: an unknown caller never gets to send a megabyte.
            caller = self._gate.identify(auth[7:].strip() if auth.startswith("Bearer ") else None,
                                         str(peer[0]) if isinstance(peer, tuple) else "local")
            body = await self._body(reader, headers)
        except HttpError as err:
            await self._send(writer, err.status, {"error": str(err), "exit_code": 2})
            return
        except ShipyardError as err:  # 401 / 429 from the gate
            await self._refuse(writer, err)
            return
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        handler = self._routes.get((method, url.path))
        if handler is None:
            await self._send(writer, 404, {"error": f"no route {method} {url.path}"[:200], "exit_code": 2})
            return
        try:
            who = self._gate.authorize(caller, method, url.path, body, query)
            result = await handler(body, query, who)
        except ShipyardError as err:
            await self._refuse(writer, err)
            return
        except HttpError as err:
            await self._send(writer, err.status, {"error": str(err)})
            return
        except Exception:
            # A bug, or a request shaped in a way the handler did not expect: answered, never a dropped connection.
            log.exception("control API %s %s failed", method, url.path)
            await self._send(writer, 500, {"error": "internal error in the control plane (see .shipyard/logs/"
                                                    "control.log)", "exit_code": 1})
            return
        if isinstance(result, Upgrade):
            writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {result.protocol}\r\n"
                         "Connection: Upgrade\r\n\r\n".encode())
            await writer.drain()
            await result.serve(reader, writer)
        elif hasattr(result, "__aiter__"):
            await self._stream(writer, result)
        else:
            await self._send(writer, 200, result)

    async def _head(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=HEAD_TIMEOUT)
        except TimeoutError:
            raise HttpError(408, f"request head not received within {HEAD_TIMEOUT:g}s") from None
        except asyncio.LimitOverrunError:
            raise HttpError(431, f"request head larger than {MAX_HEAD // 1024} KiB") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "malformed request line")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, sep, v = line.partition(":")
            name = k.strip().lower()
            if not sep or not name:
                raise HttpError(400, "malformed header line")
            if name in headers and name in ("content-length", "transfer-encoding", "authorization"):
                raise HttpError(400, f"{name} given twice")
            headers[name] = v.strip()
        return parts[0], parts[1], headers

    async def _body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> dict[str, Any]:
        if "transfer-encoding" in headers:
            raise HttpError(400, "Transfer-Encoding is not accepted: send a body with Content-Length")
        raw = headers.get("content-length", "0") or "0"
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
            raise HttpError(400, f"Content-Length must be a non-negative whole number, got {raw[:40]!r}")
        length = int(raw)
        if length > MAX_BODY:
            raise HttpError(413, f"request body larger than {MAX_BODY // 1024} KiB")
        if not length:
            return {}
        try:
            data = await asyncio.wait_for(reader.readexactly(length), timeout=BODY_TIMEOUT)
        except TimeoutError:
            raise HttpError(408, f"request body not received within {BODY_TIMEOUT:g}s "
                                 f"({length} bytes announced)") from None
        try:
            body = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise HttpError(400, "body is not UTF-8") from None
        except (json.JSONDecodeError, RecursionError):
            raise HttpError(400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, f"body must be a JSON object, got a {_json_kind(body)}")
        return body

    async def _refuse(self, writer: asyncio.StreamWriter, err: ShipyardError) -> None:
        """A ShipyardError answered: 200 with its exit code, or its ``http_status`` (401/403/429)."""
        status = int(getattr(err, "http_status", 200))
        retry = getattr(err, "retry_after", None)
        extra = f"Retry-After: {max(1, math.ceil(retry))}\r\n" if isinstance(retry, int | float) else ""
        await self._send(writer, status, {"error": str(err), "exit_code": err.exit_code}, extra)

    async def _send(self, writer: asyncio.StreamWriter, status: int, obj: Any, extra: str = "") -> None:
        data = json.dumps(obj, default=str).encode()
        writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n".encode() + data)
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, events: AsyncIterator[Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
        async for event in events:
            writer.write(json.dumps(event, default=str).encode() + b"\n")
            await writer.drain()
