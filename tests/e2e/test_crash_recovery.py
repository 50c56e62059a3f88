"""SIGKILL of the control plane mid-deploy: serving goes on; a restart comes back consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import psutil
from traffic import Traffic

from .conftest import Project, wait_for


def test_sigkill_control_plane_mid_deploy(running: Project) -> None:
    first: Any = running.json("deploy", "--env", "staging")
    running.write_spec(extra='\n[environments.staging.env]\nFAULT_SLOW_START_S = "3"\n')
    running.commit("v2")
    with Traffic(running.port, rate=100, connections=4) as traffic:
        deploy = subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "staging", "--json"],
                                  cwd=running.dir, env=running.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        # Kill once the new instances are starting (the deployment is mid-way).
        assert wait_for(lambda: len((running.json("status", "--env", "staging") or {})  # type: ignore[union-attr]
                                    .get("instances", [])) > 3, timeout=60)
        pid = running.control_pid()
        assert pid
        os.kill(pid, signal.SIGKILL)
        deploy.communicate(timeout=60)
        assert deploy.returncode != 0
        assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 10)
        # Serving goes on with the router's last table while nothing controls it.
        before = traffic.counts.sent
        assert wait_for(lambda: traffic.counts.sent > before + 100, timeout=30)
        running.ok("up", "--detach", timeout=90)
        st: Any = running.json("status", "--env", "staging")
        hist: Any = running.json("history", "--env", "staging")
        assert wait_for(lambda: traffic.counts.sent > before + 300, timeout=30)
    assert traffic.counts.failed == 0, f"{traffic.counts.summary()} {dict(traffic.counts.errors)}"
    assert hist[0]["outcome"] == "interrupted", hist[0]
    assert st["release"] == first["release"]
    assert sum(st["weights"].values()) == 100 and st["weights"] == {first["release"]: 100}
    serving = [i for i in st["instances"] if i["release"] == first["release"]]
    assert len(serving) == 3, st["instances"]
    assert {i["release"] for i in st["instances"]} == {first["release"]}, "half-deployed instances are gone"
    assert len({i["pid"] for i in st["instances"]}) == len(st["instances"])
    pids = [p.pid for p in psutil.process_iter(["cwd"])
            if str(p.info.get("cwd") or "").startswith((str(running.dir / ".shipyard" / "releases"),
                                                          str(running.dir / ".shipyard" / "workdirs")))
            and p.info.get("cwd") and "python" in " ".join(p.cmdline() if p.is_running() else [])]
    assert len(pids) == 3, f"duplicate or stray instances: {pids}"
    running.write_spec()
    nxt: Any = running.json("deploy", "--env", "staging")
    assert nxt["outcome"] == "succeeded"
    assert running.get("/")[1]["version"] == "v2"


def test_sigkill_and_up_under_load_fail_no_request(running: Project) -> None:
    """Re-adopted instances are not ready until probed: the router must keep its last table meanwhile."""
    running.json("deploy", "--env", "staging")
    with Traffic(running.port, rate=200, connections=8) as traffic:
        for _ in range(10):
            pid = running.control_pid()
            assert pid
            os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda p=pid: not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie", 10)
            running.ok("up", "--detach", timeout=90)
        before = traffic.counts.sent
        assert wait_for(lambda: traffic.counts.sent > before + 100, timeout=30)
    assert traffic.counts.failed == 0, f"{traffic.counts.summary()} {dict(traffic.counts.errors)}"
