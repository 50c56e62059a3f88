"""Hostile input: ≥100,000 malformed or random requests through the sans-io parser, property-based cases,
and a smaller batch over real sockets against a running router."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.primitives.pgcluster import free_port
from shipyard.router.h1 import ERROR, HEAD, Limits, RequestHead, RequestParser

from .fuzzing import CORPUS, HEADER_LINES, cases
from .helpers import RouterProc, Upstream, pool

LIMITS = Limits(max_request_line=2048, max_header_size=4096, max_headers=50, max_body_size=10_000)


def check_events(events: list[tuple[int, object]], raw: bytes) -> None:
    """The properties every parse must have, whatever the input."""
    seen_error = False
    for kind, payload in events:
        assert not seen_error, f"events after an error for {raw!r}"
        if kind == ERROR:
            seen_error = True
            status = payload[0]  # type: ignore[index]
            assert status in (400, 405, 413, 417, 431, 505), (status, raw)
        elif kind == HEAD:
            head = payload
            assert isinstance(head, RequestHead)
            # Never ambiguous: one framing at most, chunked only on 1.1, exactly one Host on 1.1.
            assert not (head.chunked and head.content_length >= 0), raw
            assert not (head.chunked and head.version != "1.1"), raw
            cl_lines = [line for name, line in head.lines if name == b"content-length"]
            assert len(cl_lines) <= 1, raw
            assert sum(1 for name, _ in head.lines if name == b"host") <= (1 if head.version == "1.1" else 1)
            assert head.version in ("1.0", "1.1")
            for name, line in head.lines:
                assert b"\r" not in line[:-2] and b"\n" not in line[:-2] and b"\x00" not in line, raw
                assert name != b"transfer-encoding"


def run(raw: bytes, split: int = 0) -> list[tuple[int, object]]:
    p = RequestParser(LIMITS)
    if split:
        for i in range(0, len(raw), split):
            p.feed(raw[i:i + split])
    else:
        p.feed(raw)
    return list(p.events)


def test_hundred_thousand_mutated_requests_in_process() -> None:
    n = 0
    for raw in cases(seed=20240501, n=100_000):
        events = run(raw)
        check_events(events, raw)
        n += 1
        if n % 20 == 0:
            # Fed in pieces, the same input must give the same outcome.
            split = run(raw, split=3)
            check_events(split, raw)
            assert [k for k, _ in split if k != 1] == [k for k, _ in events if k != 1], raw
    assert n == 100_000


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(CORPUS),
    extra=st.lists(st.sampled_from(HEADER_LINES), max_size=3),
    junk=st.binary(max_size=40),
    pos=st.integers(min_value=0, max_value=200),
)
def test_property_based_header_injection(base: bytes, extra: list[bytes], junk: bytes, pos: int) -> None:
    head, _, body = base.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    raw = b"\r\n".join([lines[0], *extra, *lines[1:]]) + b"\r\n\r\n" + body
    p = pos % (len(raw) + 1)
    for candidate in (raw, raw[:p] + junk + raw[p:]):
        check_events(run(candidate), candidate)


def test_random_batch_over_real_sockets(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    """The live router answers or closes every malformed request within its timeouts and keeps serving."""
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("fuzz", port, [pool("r1", [a])], {"r1": 100},
                     settings={"header_timeout": "2s", "idle_timeout": "2s", "body_timeout": "2s"})
    started = time.monotonic()
    for raw in cases(seed=7, n=300):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            got = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
            # Either nothing (closed), or HTTP responses — never a hang (the 10 s socket timeout would raise).
            assert got == b"" or got.startswith(b"HTTP/1.1 "), (raw, got[:200])
    assert time.monotonic() - started < 120
    assert router.proc.poll() is None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
