"""Sans-io framing: the request-smuggling suite, limits, header handling — no sockets."""

from __future__ import annotations

import pytest

from shipyard.router.h1 import (
    BODY,
    END,
    ERROR,
    HEAD,
    UPGRADE,
    Limits,
    RequestHead,
    RequestParser,
)
from shipyard.router.h1response import INTERIM, ResponseHead, ResponseParser


def parse(raw: bytes, limits: Limits | None = None, split: int = 0) -> list[tuple[int, object]]:
    p = RequestParser(limits or Limits())
    if split:
        for i in range(0, len(raw), split):
            p.feed(raw[i:i + split])
    else:
        p.feed(raw)
    return list(p.events)


def status_of(events: list[tuple[int, object]]) -> int | None:
    for kind, payload in events:
        if kind == ERROR:
            return payload[0]  # type: ignore[index,no-any-return]
    return None


R = b"POST / HTTP/1.1\r\nHost: a\r\n"
SMUGGLING = {
    "CL.TE": R + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "TE.CL": R + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
    "duplicate CL (same)": R + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "duplicate CL (different)": R + b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
    "CL list": R + b"Content-Length: 3, 3\r\n\r\nabc",
    "CL with plus": R + b"Content-Length: +3\r\n\r\nabc",
    "TE.TE xchunked": R + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "TE.TE space before colon": R + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "TE.TE gzip, chunked": R + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "TE.TE chunked, chunked": R + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "TE.TE twice": R + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    "TE.TE vertical tab": R + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
    "TE.TE obs-fold": R + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "TE.TE quoted": R + b'Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n',
    "TE identity": R + b"Transfer-Encoding: identity\r\n\r\n",
    "TE on HTTP/1.0": b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n",
    "bare LF line ends": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare LF in headers": b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n",
    "bare CR": b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n",
    "NUL in request line": b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    "NUL in header value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "chunk size invalid": R + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk size overflow": R + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    "chunk size with space": R + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
    "chunk data overrun": R + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    "negative CL": R + b"Content-Length: -1\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "missing Host on 1.1": b"GET / HTTP/1.1\r\n\r\n",
    "empty header name": b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_ambiguous_or_malformed_framing_is_rejected_with_400(name: str) -> None:
    for split in (0, 1, 7):
        events = parse(SMUGGLING[name], split=split)
        assert status_of(events) == 400, (name, split, events)
        if name.startswith("chunk"):
            # The head was fine; the body breaks off: the request never completes upstream.
            assert not any(k == END for k, _ in events)
        else:
            assert not any(k == HEAD for k, _ in events), "an ambiguous request must never be forwarded"


def test_plain_chunked_and_cl_requests_parse() -> None:
    events = parse(R + b"Transfer-Encoding: Chunked \r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
    kinds = [k for k, _ in events]
    assert kinds == [HEAD, BODY, END]
    head = events[0][1]
    assert isinstance(head, RequestHead) and head.chunked and head.content_length == -1
    events = parse(R + b"Content-Length: 3\r\n\r\nabc")
    assert [k for k, _ in events] == [HEAD, BODY, END] and events[1][1] == b"abc"


def test_hop_by_hop_and_replaced_headers_are_not_forwarded() -> None:
    events = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                   b"TE: trailers\r\nProxy-Authorization: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Keep: y\r\n\r\n")
    head = events[0][1]
    assert isinstance(head, RequestHead)
    names = [n for n, _ in head.lines]
    assert names == [b"host", b"x-keep"]
    assert head.xff == b"1.2.3.4"


@pytest.mark.parametrize(
    ("raw", "limits", "status"),
    [
        (b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: a\r\n\r\n", Limits(max_request_line=512), 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 3000 + b"\r\n\r\n", Limits(max_header_size=2048), 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: 1\r\n" * 20 + b"\r\n", Limits(max_headers=10), 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 100_000, Limits(), 431),  # never-ending header
        (R + b"Content-Length: 2000\r\n\r\n", Limits(max_body_size=1000), 413),
        (R + b"Transfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n",
         Limits(max_body_size=1000), 413),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Limits(), 505),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Limits(), 405),
        (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", Limits(), 417),
    ],
)
def test_limits(raw: bytes, limits: Limits, status: int) -> None:
    assert status_of(parse(raw, limits, split=512)) == status


def test_pipelined_requests_come_out_in_order_and_upgrade_keeps_the_rest() -> None:
    events = parse(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    heads = [p.target for k, p in events if k == HEAD and isinstance(p, RequestHead)]
    assert heads == [b"/1", b"/2"]
    events = parse(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nFRAME")
    assert [k for k, _ in events] == [HEAD, END, UPGRADE] and events[2][1] == b"FRAME"
    head = events[0][1]
    assert isinstance(head, RequestHead) and head.upgrade == b"websocket"


def test_response_parser_head_interim_and_until_close() -> None:
    p = ResponseParser()
    p.no_body = True
    p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
    assert [k for k, _ in p.events] == [HEAD, END] and not p.dirty
    p.events.clear()
    p.reset()
    p.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    kinds = [k for k, _ in p.events]
    assert kinds == [INTERIM, HEAD, BODY, END]
    assert p.events[0][1] == b"HTTP/1.1 100 Continue\r\n\r\n"
    rh = p.events[1][1]
    assert isinstance(rh, ResponseHead) and rh.status == 201 and rh.chunked
    q = ResponseParser()
    q.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial")
    q.eof()
    assert [k for k, _ in q.events] == [HEAD, BODY, END]
    r = ResponseParser()
    r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    r.eof()
    assert r.events[-1][0] == ERROR


ONE = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def test_deep_pipelining_in_one_read_is_not_a_huge_head() -> None:
    p = RequestParser(Limits())
    p.feed(ONE * 2000 + ONE[:10])  # 54 KB in one read, more than the 40 KB a head may take
    p.feed(ONE[10:])
    heads = [ev for ev in p.events if ev[0] == HEAD]
    assert len(heads) == 2001 and status_of(list(p.events)) is None


def test_body_bytes_before_a_new_head_in_the_same_read_are_not_head_bytes() -> None:
    limits = Limits(max_request_line=256, max_header_size=1024)
    p = RequestParser(limits)
    body = b"x" * 5000  # no newline in it
    p.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + body[:100])
    p.feed(body[100:] + ONE[:10])
    p.feed(ONE[10:])
    assert [ev[0] for ev in p.events if ev[0] in (HEAD, END, ERROR)] == [HEAD, END, HEAD, END]


@pytest.mark.parametrize("split", [0, 512, 70_000])
def test_a_never_ending_line_after_pipelined_requests_is_still_431(split: int) -> None:
    raw = ONE * 100 + b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 100_000
    assert status_of(parse(raw, Limits(), split=split)) == 431
    assert status_of(parse(ONE * 100 + b"GET /" + b"a" * 100_000, Limits(), split=split)) == 431
