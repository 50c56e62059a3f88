"""Coming back: `shipyard up` after `shipyard down`, and after a reboot (every shipyard process and instance
killed), serves the last release again and says so in history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from traffic import Traffic

from .conftest import Project, wait_for


def _serving(project: Project, version: str) -> bool:
    try:
        status, body = project.get("/")
    except OSError:
        return False
    return status == 200 and body.get("version") == version


def _deployed_v2(project: Project) -> Any:
    project.ok("up", "--detach", timeout=90)
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    project.commit("v2")
    res: Any = project.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded", res
    return res


def _restored(project: Project, release: str) -> None:
    t0 = time.monotonic()
    project.ok("up", "--detach", timeout=90)
    assert wait_for(lambda: _serving(project, "v2"), timeout=30), "the last release serves again"
    assert time.monotonic() - t0 < 30
    status: Any = project.json("status", "--env", "staging")
    assert status["release"] == release and status["weights"] == {release: 100}
    assert sum(1 for i in status["instances"] if i["release"] == release and i["ready"]) == 3
    hist: Any = project.json("history", "--env", "staging")
    assert hist[0]["kind"] == "restore" and hist[0]["outcome"] == "succeeded", hist[0]
    assert release in (hist[0]["reason"] or "")


def test_up_after_down_serves_the_last_release(project: Project) -> None:
    res = _deployed_v2(project)
    project.ok("down", timeout=120)
    assert not _serving(project, "v2"), "down stops everything"
    _restored(project, res["release"])


def test_up_after_a_reboot_serves_the_last_release(project: Project) -> None:
    res = _deployed_v2(project)
    project.kill_everything()  # SIGKILL: control plane, router and every instance, as a power cut would
    assert wait_for(lambda: not _serving(project, "v2"), timeout=10)
    _restored(project, res["release"])


def test_a_killed_router_is_restarted_with_every_table(project: Project) -> None:
    res = _deployed_v2(project)
    router = project.dir / ".shipyard" / "run" / "router.json"
    pid = json.loads(router.read_text())["pid"]
    with Traffic(project.port, rate=200, connections=8) as traffic:
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        assert wait_for(lambda: json.loads(router.read_text())["pid"] != pid and _serving(project, "v2"),
                        timeout=10, interval=0.02)
        back = time.monotonic() - t0
        time.sleep(0.5)
    assert back < 2.0, f"serving again after {back:.2f}s"
    counts = traffic.counts
    assert counts.ok > 0 and counts.versions["v2"] > 0
    status: Any = project.json("status", "--env", "staging")
    assert status["weights"] == {res["release"]: 100}
    hist: Any = project.json("history", "--env", "staging")
    assert hist[0]["kind"] == "restore" and "router" in (hist[0]["reason"] or ""), hist[0]


def test_five_concurrent_ups_leave_one_control_plane_and_one_router(project: Project) -> None:
    import subprocess
    import sys

    import psutil

    procs = [subprocess.Popen([sys.executable, "-m", "shipyard", "up", "--detach"], cwd=project.dir, env=project.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, outs
    said = [o[0] for o in outs]
    assert sum("already running" in s for s in said) == 4, said
    state = str(project.dir / ".shipyard")

    def ours(p: psutil.Process, what: str) -> bool:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            return False
        return what in cmd and (state in cmd or str(project.dir) in cmd)

    procs_now = list(psutil.process_iter())
    assert sum(ours(p, "shipyard.control.daemon") for p in procs_now) == 1
    assert sum(ours(p, "shipyard.router") for p in procs_now) == 1


def test_the_router_gets_no_secret_from_the_control_plane(project: Project) -> None:
    """The master key (and every SHIPYARD_* setting, such as a database URL) never reaches the router."""
    import base64

    key = base64.b64encode(os.urandom(32)).decode()
    env = {**project.env, "SHIPYARD_MASTER_KEY": key, "SHIPYARD_DATABASE_URL_TEST_MARKER": "x"}
    proc = subprocess.run([sys.executable, "-m", "shipyard", "up", "--detach"], cwd=project.dir, env=env,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    pid = json.loads((project.dir / ".shipyard" / "run" / "router.json").read_text())["pid"]
    environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")  # noqa: SIM115 - read once
    assert not [v for v in environ if v.startswith(b"SHIPYARD_")], "no shipyard setting in the router's environment"
    assert key.encode() not in b"\0".join(environ)
