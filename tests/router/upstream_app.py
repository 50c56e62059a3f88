"""A small real HTTP/1.1 server used as an instance behind the router in tests.

    python upstream_app.py PORT INSTANCE_ID

Paths: ``/`` (body = instance id), ``/echo`` (body back, same framing as asked by ?chunked=1),
``/sink`` (reads the body, answers its size and sha256), ``/download?bytes=N[&chunked=1]``,
``/slow?ms=N``, ``/status?code=N``, ``/headers`` (request headers as JSON), ``/close`` (body until close),
``/ws`` (WebSocket echo), ``/hints`` (103 Early Hints, then 200), ``/trailers`` (chunked, with trailers
``X-Checksum`` and ``Set-Cookie``, the latter never to be forwarded). Every response carries ``X-Instance``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools

INSTANCE = "?"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.t: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.ws = False
        self.ws_buf = b""
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, t: Any) -> None:
        self.t = t
        self.task = asyncio.ensure_future(self.serve())

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        if self.ws:
            self.ws_data(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0]:]
            self.queue.put_nowait(("upgrade", rest))
        except httptools.HttpParserError:
            assert self.t is not None
            self.t.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.t.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(("lost", None))

    # parser callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.queue.put_nowait(("head", (self.parser.get_method().decode(), self.url.decode(), self.headers,
                                        self.parser.should_keep_alive())))

    def on_body(self, body: bytes) -> None:
        self.queue.put_nowait(("body", bytes(body)))

    def on_message_complete(self) -> None:
        self.queue.put_nowait(("end", None))

    # websocket echo (text/binary frames from the client are masked; ours are not)
    def ws_data(self, data: bytes) -> None:
        self.ws_buf += data
        while len(self.ws_buf) >= 2:
            b0, b1 = self.ws_buf[0], self.ws_buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(self.ws_buf) < 4:
                    return
                n = int.from_bytes(self.ws_buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(self.ws_buf) < 10:
                    return
                n = int.from_bytes(self.ws_buf[2:10], "big")
                pos = 10
            masked = b1 & 0x80
            if len(self.ws_buf) < pos + (4 if masked else 0) + n:
                return
            mask = self.ws_buf[pos:pos + 4] if masked else b"\0\0\0\0"
            pos += 4 if masked else 0
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(self.ws_buf[pos:pos + n]))
            self.ws_buf = self.ws_buf[pos + n:]
            assert self.t is not None
            if b0 & 0x0F == 8:
                self.t.write(bytes([0x88, 0]))
                self.t.close()
                return
            self.t.write(bytes([b0]) + ws_len(len(payload)) + payload)

    async def serve(self) -> None:
        t = self.t
        assert t is not None
        while True:
            kind, val = await self.queue.get()
            if kind == "lost":
                return
            if kind != "head":
                continue
            method, url, headers, keep_alive = val
            parts = urlsplit(url)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            path = parts.path
            hdrs = {k.lower(): v for k, v in headers}
            if path == "/ws" and hdrs.get("upgrade", "").lower() == "websocket":
                while (await self.queue.get())[0] != "end":
                    pass
                key = hdrs.get("sec-websocket-key", "").encode()
                accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
                t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: " + accept + b"\r\nX-Instance: " + INSTANCE.encode() + b"\r\n\r\n")
                self.ws = True
                while not self.queue.empty():
                    k, v = self.queue.get_nowait()
                    if k == "upgrade" and v:
                        self.ws_data(v)
                return
            if path == "/slow":
                await asyncio.sleep(float(q.get("ms", "100")) / 1000)
            body_chunks: list[bytes] = []
            sha = hashlib.sha256()
            size = 0
            while True:
                kind, val = await self.queue.get()
                if kind == "lost":
                    return
                if kind == "end" or kind == "upgrade":
                    break
                if kind == "body":
                    size += len(val)
                    sha.update(val)
                    if path == "/echo":
                        body_chunks.append(val)
            extra = b"X-Instance: " + INSTANCE.encode() + b"\r\n"
            if not keep_alive:
                extra += b"Connection: close\r\n"
            status = int(q.get("code", "200")) if path == "/status" else 200
            if path == "/download":
                total = int(q.get("bytes", "0"))
                piece = b"x" * 65536
                if q.get("chunked"):
                    t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + extra + b"\r\n")
                else:
                    t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % total + extra + b"\r\n")
                left = total
                while left > 0:
                    n = min(left, len(piece))
                    if q.get("chunked"):
                        t.write(b"%x\r\n" % n + piece[:n] + b"\r\n")
                    else:
                        t.write(piece[:n])
                    left -= n
                    await self.can_write.wait()
                if q.get("chunked"):
                    t.write(b"0\r\n\r\n")
            elif path == "/hints":
                t.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
                t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + extra + b"\r\nhints")
            elif path == "/trailers":
                t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n" + extra
                        + b"\r\n5\r\nhello\r\n0\r\nX-Checksum: abc123\r\nSet-Cookie: s=1\r\n\r\n")
            elif path == "/close":
                t.write(b"HTTP/1.1 200 OK\r\n" + extra + b"Connection: close\r\n\r\nuntil-close-body")
                t.close()
                return
            else:
                if path == "/echo":
                    body = b"".join(body_chunks)
                elif path == "/sink":
                    body = json.dumps({"size": size, "sha256": sha.hexdigest()}).encode()
                elif path == "/headers":
                    body = json.dumps({"method": method, "url": url, "headers": headers}).encode()
                else:
                    body = INSTANCE.encode()
                if path == "/echo" and q.get("chunked"):
                    t.write(b"HTTP/1.1 %d OK\r\nTransfer-Encoding: chunked\r\n" % status + extra + b"\r\n")
                    for c in body_chunks:
                        t.write(b"%x\r\n" % len(c) + c + b"\r\n")
                    t.write(b"0\r\n\r\n")
                elif method == "HEAD":
                    t.write(b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n" % (status, len(body)) + extra + b"\r\n")
                else:
                    t.write(b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n" % (status, len(body)) + extra + b"\r\n"
                            + body)
            if not keep_alive:
                t.close()
                return


def ws_len(n: int) -> bytes:
    if n < 126:
        return bytes([n])
    if n < 65536:
        return bytes([126]) + n.to_bytes(2, "big")
    return bytes([127]) + n.to_bytes(8, "big")


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    INSTANCE = sys.argv[2]
    asyncio.run(main(int(sys.argv[1])))
