"""Bad input: a clear message, the documented exit code, and the serving release untouched."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

from .conftest import Project, wait_for


def _serving(p: Project) -> str:
    status, body = p.get("/")
    assert status == 200
    return str(body["version"])


def test_invalid_config_exit_2_nothing_started(project: Project) -> None:
    project.write_spec(replicas=0)
    proc = project.cli("deploy", "--env", "staging")
    assert proc.returncode == 2, proc.stderr
    assert "environments.staging.replicas" in proc.stderr and "Traceback" not in proc.stderr
    proc = project.cli("up", "--detach")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert project.control_pid() is None


def test_unknown_env_and_ref(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    proc = running.cli("deploy", "--env", "prod")
    assert proc.returncode == 2 and "unknown environment 'prod'" in proc.stderr and "staging" in proc.stderr
    proc = running.cli("deploy", "--env", "staging", "--ref", "no-such-ref")
    assert proc.returncode == 2 and "no-such-ref" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = running.cli("deploy", "--env", "staging", "--strategy", "dark-launch")
    assert proc.returncode == 2 and "dark-launch" in proc.stderr and "canary" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _serving(running) == "v1"


def test_build_failure_leaves_old_release_serving(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    spec = (running.dir / "shipyard.toml").read_text()
    (running.dir / "shipyard.toml").write_text(spec.replace('build = ["python3 -m compileall -q ."]',
                                                            'build = ["python3 -c \'raise SystemExit(3)\'"]'))
    running.commit("v2")
    res: Any = running.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "failed" and "build failed" in res["reason"]
    assert _serving(running) == "v1"
    assert len(running.json("releases")) == 1  # type: ignore[arg-type]


def test_app_never_ready_leaves_old_release_serving(running: Project) -> None:
    first: Any = running.json("deploy", "--env", "staging")
    running.write_spec(deploy_timeout="3s", extra='\n[environments.staging.env]\nFAULT_SLOW_START_S = "1000"\n')
    running.commit("v2")
    res: Any = running.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "failed" and "not ready within 3s" in res["reason"], res
    assert _serving(running) == "v1"
    st: Any = running.json("status", "--env", "staging")
    assert st["release"] == first["release"]
    assert {i["release"] for i in st["instances"]} == {first["release"]}, "new instances were stopped"


def test_port_in_use(running: Project) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", running.port))
    blocker.listen()
    try:
        proc = running.cli("deploy", "--env", "staging")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "port" in proc.stderr and str(running.port) in proc.stderr and "in use" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        blocker.close()


def test_second_concurrent_deploy_is_refused(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    running.write_spec(extra='\n[environments.staging.env]\nFAULT_SLOW_START_S = "4"\n')
    running.commit("v2")
    first = subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "staging", "--json"],
                             cwd=running.dir, env=running.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert wait_for(lambda: (running.json("status", "--env", "staging") or {}).get("deployment")  # type: ignore[union-attr]
                        is not None, timeout=60)
        proc = running.cli("deploy", "--env", "staging")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "already running" in proc.stderr and "deployment" in proc.stderr
        assert _serving(running) == "v1"
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    time.sleep(0)
    assert _serving(running) == "v2"
