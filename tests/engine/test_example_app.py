"""The example services as real processes on loopback: endpoints, fault knobs, graceful stop."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.releases import build_release, instance_dir
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.pgcluster import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def get_json(app: Any, path: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    status, headers, body = app.request("GET", path)
    return status, headers, json.loads(body)


def test_endpoints_carry_version_and_release(start_app: Any) -> None:
    app = start_app({"APP_VERSION": "v7", "SHIPYARD_RELEASE": "r1-abc", "GREETING": "hi there"})
    status, headers, body = get_json(app, "/")
    assert status == 200
    assert body["version"] == "v7" and body["release"] == "r1-abc" and body["greeting"] == "hi there"
    assert body["instance"]
    assert headers["x-app-version"] == "v7" and headers["x-shipyard-release"] == "r1-abc"
    assert int(headers["content-length"]) == len(json.dumps(body)) + 1

    assert get_json(app, "/health")[0] == 200
    status, _, body = get_json(app, "/ready")
    assert status == 200 and body["ready"] is True
    status, _, body = get_json(app, "/slow?ms=50")
    assert status == 200 and body["slept_ms"] == 50
    assert get_json(app, "/slow?ms=x")[0] == 400

    status, headers, raw = app.request("POST", "/echo", b"ping \x00 pong", {"Content-Type": "application/x-test"})
    assert status == 200 and raw == b"ping \x00 pong"
    assert headers["content-type"] == "application/x-test" and headers["x-app-version"] == "v7"
    assert app.request("GET", "/echo")[0] == 405
    conn = app.connection()
    conn.request("POST", "/echo", body=iter([b"chunk-one ", b"chunk-two"]), encode_chunked=True)
    assert conn.getresponse().read() == b"chunk-one chunk-two"
    conn.request("GET", "/")  # the connection stays usable after a chunked body
    assert conn.getresponse().status == 200
    status, headers, _ = app.request("GET", "/nope")
    assert status == 404 and headers["x-app-version"] == "v7"


def test_keep_alive_serves_many_requests_on_one_connection(start_app: Any) -> None:
    app = start_app()
    conn = app.connection()
    conn.request("GET", "/")
    conn.getresponse().read()
    sock = conn.sock
    for path in ["/", "/health", "/ready", "/slow?ms=1"] * 25:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.request("POST", "/echo", body=b"x" * 10_000)
    assert conn.getresponse().read() == b"x" * 10_000
    assert conn.sock is sock, "the connection was not kept alive"


def test_version_comes_from_version_file_else_dev(start_app: Any, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "app.py", tmp_path / "app.py")
    assert get_json(start_app(script=tmp_path / "app.py"), "/")[2]["version"] == "dev"
    (tmp_path / "VERSION").write_text("v3\n")
    app = start_app(script=tmp_path / "app.py")
    assert get_json(app, "/")[2]["version"] == "v3"
    assert app.request("GET", "/health")[1]["x-app-version"] == "v3"


def test_fault_error_rate(start_app: Any) -> None:
    always = start_app({"FAULT_ERROR_RATE": "1"})
    status, headers, body = always.request("GET", "/")
    assert status == 500 and headers["x-app-version"] and b"FAULT_ERROR_RATE" in body
    assert always.request("GET", "/health")[0] == 200  # probes are never faulted
    assert always.request("GET", "/ready")[0] == 200

    half = start_app({"FAULT_ERROR_RATE": "50%"})
    conn = half.connection()
    statuses = []
    for _ in range(200):
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
    assert set(statuses) == {200, 500}  # p(all one kind) = 2**-199
    assert 40 < statuses.count(500) < 160


def test_fault_latency(start_app: Any) -> None:
    app = start_app({"FAULT_LATENCY_MS": "300"})
    t0 = time.monotonic()
    assert app.request("GET", "/")[0] == 200
    assert time.monotonic() - t0 >= 0.3


def test_fault_slow_start_then_ready(start_app: Any) -> None:
    app = start_app({"FAULT_SLOW_START_S": "3"})
    status, _, body = get_json(app, "/ready")
    assert status == 503 and body["ready"] is False
    assert get_json(app, "/health")[0] == 200  # alive while not ready
    assert get_json(app, "/")[0] == 200
    deadline = time.monotonic() + 30
    while get_json(app, "/ready")[0] != 200:
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.1)


def test_fault_crash_at_start() -> None:
    env = {**os.environ, "PORT": str(free_port()), "FAULT_CRASH_AT_START": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "app.py")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "FAULT_CRASH_AT_START" in proc.stderr


def test_bad_knob_value_exits_2() -> None:
    env = {**os.environ, "PORT": str(free_port()), "FAULT_ERROR_RATE": "2"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "app.py")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "FAULT_ERROR_RATE" in proc.stderr


def test_fault_health_fail(start_app: Any) -> None:
    app = start_app({"FAULT_HEALTH_FAIL": "1"})
    status, _, body = get_json(app, "/health")
    assert status == 500 and body["status"] == "failing"
    assert get_json(app, "/")[0] == 200


def test_sigterm_finishes_in_flight_then_exits_0(start_app: Any) -> None:
    app = start_app({"APP_VERSION": "v1"})
    idle = app.connection()  # an open keep-alive connection from before the stop
    idle.request("GET", "/health")
    idle.getresponse().read()

    slow_result: dict[str, Any] = {}

    def slow() -> None:
        slow_result["status"], _, slow_result["body"] = app.request("GET", "/slow?ms=4000")

    worker = threading.Thread(target=slow)
    worker.start()
    deadline = time.monotonic() + 30
    while True:  # the event to await: the server has the slow request in hand
        idle.request("GET", "/health")
        if json.loads(idle.getresponse().read())["inflight"] >= 1:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)

    app.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while True:  # new connections are refused once it stops accepting
        try:
            socket.create_connection(("127.0.0.1", app.port), timeout=5).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: closed mid-handshake
            break
        assert time.monotonic() < deadline, "still accepting after SIGTERM"
        time.sleep(0.02)
    # Still in flight: the process is alive; an existing connection is told to close and not ready.
    assert app.proc.poll() is None
    idle.request("GET", "/ready")
    resp = idle.getresponse()
    resp.read()
    assert resp.status == 503 and resp.getheader("Connection") == "close"

    worker.join(timeout=60)
    assert slow_result["status"] == 200 and json.loads(slow_result["body"])["slept_ms"] == 4000
    assert app.proc.wait(timeout=60) == 0
    assert "stopped (drained)" in app.proc.stdout.read()


def test_flask_app_under_gunicorn_keeps_data_across_releases(
    make_repo: Any, wait_ok: Any, tmp_path: Path
) -> None:
    """The third-party example: notes written under release 1 are read back under release 2."""
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed in this environment")
    repo = make_repo(tmp_path / "notes")
    for name in ("app.py", "gunicorn.conf.py", "shipyard.toml", "requirements.txt"):
        shutil.copy(EXAMPLES / "flaskapp" / name, repo.path / name)
    repo.commit("notes v1", {"VERSION": "v1\n"})
    repo.tag("v1")
    repo.commit("notes v2", {"VERSION": "v2\n"})
    state = tmp_path / "state"

    def run(release_path: Path) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_VERSION")}
        env.update(PORT=str(port), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
        # The run command from its shipyard.toml, through the shell as shipyard runs it.
        proc = subprocess.Popen(
            "exec gunicorn -w 2 -b 127.0.0.1:$PORT app:app",
            shell=True, cwd=release_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_ok(port, "/ready", timeout=60)
        return proc, port

    def call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, path, body=json.dumps(body) if body else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = resp.status, json.loads(resp.read())
        conn.close()
        return out

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0

    r1 = build_release(project_dir=repo.path, state_dir=state, ref="v1", build_cmds=[], shared=["instance"],
                       clock=SystemClock())
    proc, port = run(instance_dir(state, "staging", r1.id))
    try:
        assert call(port, "POST", "/notes", {"text": "written by v1"})[0] == 201
        assert call(port, "POST", "/notes", {})[0] == 400
    finally:
        stop(proc)
    assert (state / "shared" / "staging" / "instance" / "app.db").exists()

    r2 = build_release(project_dir=repo.path, state_dir=state, ref="main", build_cmds=[], shared=["instance"],
                       clock=SystemClock())
    proc, port = run(instance_dir(state, "staging", r2.id))
    try:
        status, body = call(port, "GET", "/notes")
        assert status == 200 and body["version"] == "v2"
        assert [(n["text"], n["version"]) for n in body["notes"]] == [("written by v1", "v1")]
    finally:
        stop(proc)
