"""Bad requests to the control API (issue "Hardening", item 9): each is answered 400/408 with a message,
over raw sockets against a real control plane; nothing lands in control.log as a traceback."""

from __future__ import annotations

import json
import socket
import time

import pytest
from sandbox import Project


def _port_token(plane: Project) -> tuple[int, str]:
    state = plane.dir / ".shipyard"
    return int(json.loads((state / "control.json").read_text())["port"]), (state / "token").read_text().strip()


def exchange(plane: Project, raw: bytes, *, timeout: float = 20.0) -> tuple[int, dict[str, object], float]:
    """Send ``raw`` (``{token}`` replaced), read the answer until the server closes; (status, body, seconds)."""
    port, token = _port_token(plane)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw.replace(b"{token}", token.encode()))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    elapsed = time.monotonic() - start
    assert data, "the connection was closed with no answer"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), elapsed


def post(path: str, body: bytes, *, length: str | None = None, extra: str = "") -> bytes:
    cl = str(len(body)) if length is None else length
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {{token}}\r\nContent-Length: {cl}\r\n"
            f"{extra}\r\n").encode() + body


@pytest.mark.parametrize(("raw", "status", "needle"), [
    (post("/v1/deploy", b"{}", length="abc"), 400, "Content-Length must be a non-negative whole number"),
    (post("/v1/deploy", b"{}", length="-5"), 400, "Content-Length must be a non-negative whole number"),
    (post("/v1/deploy", b"{}", length="1e3"), 400, "Content-Length"),
    (post("/v1/deploy", b'["staging"]'), 400, "body must be a JSON object, got a list"),
    (post("/v1/deploy", b'"staging"'), 400, "body must be a JSON object, got a string"),
    (post("/v1/deploy", b"7"), 400, "body must be a JSON object, got a number"),
    (post("/v1/deploy", b'{"env": "\xff\xfe"}'), 400, "body is not UTF-8"),
    (post("/v1/deploy", b"{not json"), 400, "body is not JSON"),
    (post("/v1/deploy", b"[" * 100_000), 400, "body is not JSON"),
    (post("/v1/deploy", b"{}", extra="Transfer-Encoding: chunked\r\n"), 400, "Transfer-Encoding"),
    (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    (post("/v1/deploy", b"x" * 10, length=str(2 << 20)), 413, "larger than"),
])
def test_bad_requests_are_answered(plane: Project, raw: bytes, status: int, needle: str) -> None:
    got, body, _ = exchange(plane, raw)
    assert got == status, body
    assert needle in str(body["error"]), body


@pytest.mark.parametrize(("path", "body"), [
    *[(p, b) for p in ("/v1/deploy", "/v1/rollback", "/v1/canary") for b in (
        {"env": 5}, {"env": ["staging"]}, {"env": {"a": 1}, "command": 3})],
    ("/v1/deploy", {"env": "staging", "ref": 5}), ("/v1/deploy", {"env": "staging", "release": ["r1"]}),
    ("/v1/deploy", {"env": "staging", "strategy": {"x": 1}}), ("/v1/rollback", {"env": "staging", "to": 7}),
    ("/v1/canary", {"env": "staging", "command": 3}),
    *[(p, b) for p in ("/v1/backups/run", "/v1/backups/verify", "/v1/backups/restore", "/v1/backups/drill")
      for b in ({"env": 5}, {"env": "staging", "source": 5}, {"env": ["x"]})],
    ("/v1/backups/verify", {"env": "staging", "subset": "half"}),
])
def test_wrong_types_are_answered_as_bad_input(plane: Project, path: str, body: dict[str, object]) -> None:
    got, answer, _ = exchange(plane, post(path, json.dumps(body).encode()))
    assert got in (200, 400), answer
    assert answer.get("error") and answer.get("exit_code") == 2, answer


def test_a_short_body_is_answered_408_after_the_body_timeout(plane: Project) -> None:
    got, body, elapsed = exchange(plane, post("/v1/deploy", b'{"env": ', length="100"))
    assert got == 408, body
    assert "not received within 10s" in str(body["error"])
    assert 9 < elapsed < 15


def test_the_control_log_holds_no_traceback(plane: Project) -> None:
    exchange(plane, post("/v1/deploy", b'["x"]'))
    log = (plane.dir / ".shipyard" / "logs" / "control.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert plane.cli("status", "--env", "staging").returncode == 0  # still serving the API
