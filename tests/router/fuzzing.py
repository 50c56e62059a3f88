"""Malformed-request generator shared by the in-process fuzz test and the socket batch."""

from __future__ import annotations

import random

CORPUS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nCookie: a=b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
]
INTERESTING = [b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b":", b",", b"0", b"f", b"-", b"\x0b", b"\x7f", b"\xff",
               b";", b'"', b"\r\n\r\n", b"HTTP/1.1", b"chunked"]
HEADER_LINES = [
    b"Transfer-Encoding: chunked", b"Transfer-Encoding : chunked", b"Transfer-Encoding: xchunked",
    b"Transfer-Encoding:\tchunked", b"Transfer-Encoding: chunked, identity", b"Transfer-encoding: cow",
    b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: 99999999999999999999", b"Content-Length: 1, 1",
    b"Content-Length:", b" Content-Length: 4", b"Host: b", b"Connection: close", b"Connection: Upgrade",
    b"Upgrade: h2c", b"Expect: 100-continue", b"X: \x00", b"X:\r\n y", b"Transfer-Encoding: \x0bchunked",
]


def mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(b) + 1)
        if op == 0:
            b[pos:pos] = rnd.choice(INTERESTING)
        elif op == 1 and b:
            del b[pos:pos + rnd.randint(1, 4)]
        elif op == 2:
            lines = bytes(b).split(b"\r\n")
            i = rnd.randrange(1, max(2, min(len(lines), 6)))
            lines.insert(i, rnd.choice(HEADER_LINES))
            b = bytearray(b"\r\n".join(lines))
        elif op == 3 and b:
            b[pos % len(b)] = rnd.randrange(256)
        elif op == 4:
            b = b[: rnd.randrange(len(b) + 1)]
        elif op == 5:
            b[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        else:
            lines = bytes(b).split(b"\r\n")
            if len(lines) > 2:
                i = rnd.randrange(1, len(lines) - 1)
                lines.insert(i, lines[i])
            b = bytearray(b"\r\n".join(lines))
    return bytes(b)


def cases(seed: int, n: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        if rnd.random() < 0.05:
            out.append(bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 200))))
        else:
            out.append(mutate(rnd, rnd.choice(CORPUS)))
    return out
