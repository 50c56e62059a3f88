"""Day two, the small things: a build failure's output once, a table added is one config change, a
dirty working tree is said, ``status`` while the control plane is down — through the real CLI against a
real control plane."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Project

FAILING_BUILD = '''\
def check():
    raise RuntimeError("build-check-failed-7f3a")


check()
'''


def test_a_build_failure_prints_its_output_once(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    spec = running.dir / "shipyard.toml"
    spec.write_text(spec.read_text().replace('build = ["python3 -m compileall -q ."]',
                                             'build = ["python3 check.py"]'))
    running.commit("v2", files={"check.py": FAILING_BUILD})
    proc = running.cli("deploy", "--env", "staging")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.count("RuntimeError: build-check-failed-7f3a") == 1, out
    assert out.count("Traceback (most recent call last)") == 1, out
    assert "build failed: `python3 check.py` exited 1 (output above)" in out, out
    # The document keeps the whole story.
    res: Any = running.json("deploy", "--env", "staging", code=1)
    assert "RuntimeError: build-check-failed-7f3a" in res["reason"], res["reason"]


def test_plan_shows_an_added_table_not_its_leaves(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    spec = running.dir / "shipyard.toml"
    spec.write_text(spec.read_text() + '\n[environments.staging.verify]\nrate = 20\nduration = "2s"\n')
    plan: Any = running.json("deploy", "--env", "staging", "--plan")
    assert plan["changes"]["config_changed"] == ["environment.verify (added)"], plan["changes"]
    human = running.ok("deploy", "--env", "staging", "--plan").stdout
    assert "config changed: environments.staging.verify (added)\n" in human, human


def test_a_dirty_working_tree_is_said_on_stderr(running: Project) -> None:
    clean = running.cli("deploy", "--env", "staging", "--plan", "--json")
    assert clean.returncode == 0 and "warning" not in clean.stderr, clean.stderr
    (running.dir / "app.py").write_text((running.dir / "app.py").read_text() + "\n# not committed\n")
    (running.dir / "notes.txt").write_text("untracked\n")
    proc = running.cli("deploy", "--env", "staging", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    json.loads(proc.stdout)  # the document is whole
    assert "uncommitted changes (app.py, notes.txt) are not deployed" in proc.stderr, proc.stderr
    assert "the release is built from commit" in proc.stderr and "(HEAD)" in proc.stderr, proc.stderr
    assert "shipyard.toml" not in proc.stderr, proc.stderr
    spec = running.dir / "shipyard.toml"
    spec.write_text(spec.read_text().replace('GREETING = "hello"', 'GREETING = "hi"'))
    proc = running.cli("deploy", "--env", "staging", "--release", running.json("status", "--env", "staging")[
        "release"], "--plan")  # type: ignore[index]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "shipyard.toml has uncommitted changes and they apply" in proc.stderr, proc.stderr
    assert "app.py" not in proc.stderr, "a deploy of an existing release builds nothing"


def test_status_says_warm_and_shows_the_router_while_the_control_plane_is_down(running: Project) -> None:
    import os
    import signal

    first: Any = running.json("deploy", "--env", "staging")
    running.commit("v2")
    second: Any = running.json("deploy", "--env", "staging")
    st: Any = running.json("status", "--env", "staging")
    roles = {i["release"]: i["role"] for i in st["instances"]}
    assert roles == {first["release"]: "warm", second["release"]: "stable"}, st["instances"]
    human = running.ok("status", "--env", "staging").stdout
    assert " warm " in human and " old " not in human, human

    pid = running.control_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert running.get("/")[1]["version"] == "v2", "the router keeps serving"
    proc = running.cli("status", "--env", "staging")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "control plane is not running" in proc.stderr and "shipyard up --detach" in proc.stderr, proc.stderr
    assert "the router (pid" in proc.stdout and second["release"] + " 100%" in proc.stdout, proc.stdout
    doc: Any = running.json("status", code=1)
    assert doc["control_plane"]["running"] is False and doc["router"]["running"] is True, doc
    (env,) = doc["environments"]
    assert env["env"] == "staging" and env["release"] == second["release"], env
    roles = {i["release"]: i["role"] for i in env["instances"]}
    assert roles == {first["release"]: "warm", second["release"]: "stable"}, env["instances"]
    assert env["traffic"]["requests"] >= 1, env["traffic"]
    assert running.cli("status", "--env", "prod").returncode == 2
    running.ok("up", "--detach", timeout=90)  # brought back, so teardown stops everything cleanly


def test_verify_says_which_instances_restarted_during_the_run(running: Project) -> None:
    import os
    import signal
    import subprocess
    import sys

    from shipyard.primitives.routerproto import RouterClient

    from .conftest import wait_for

    running.json("deploy", "--env", "staging")
    victim = running.json("status", "--env", "staging")["instances"][0]  # type: ignore[index]
    proc = subprocess.Popen([sys.executable, "-m", "shipyard", "verify", "--env", "staging", "--rate", "50",
                             "--duration", "5s", "--json"], cwd=running.dir, env=running.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The load has begun (so verify has read the restart counts before it): crash one instance.
        router = RouterClient(running.dir / ".shipyard" / "run" / "router.sock")
        assert wait_for(lambda: router.call("stats", env="staging", window_s=5)["releases"], timeout=30)
        assert wait_for(lambda: sum(r["requests"] for r in router.call(
            "stats", env="staging", window_s=5)["releases"].values()) > 0, timeout=30)
        os.kill(victim["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(out)
    assert doc["restarts"]["checked"] is True, doc["restarts"]
    assert [i["instance"] for i in doc["restarts"]["instances"]] == [victim["id"]], doc["restarts"]
    assert doc["restarts"]["total"] >= 1
    assert any("restarted during the run" in w and victim["id"] in w for w in doc["warnings"]), doc["warnings"]
    human = running.cli("verify", "--env", "staging", "--rate", "20", "--duration", "1s")
    assert "restarted during the run" not in human.stdout, human.stdout  # none this time
