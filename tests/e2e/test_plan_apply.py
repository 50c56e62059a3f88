"""The plan is what runs: ``--plan`` lists exactly the steps the deployment then records, a deploy reads
shipyard.toml once, and editing it while a deployment runs changes nothing in that deployment."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

import pytest

from shipyard.primitives.store import open_store

from .conftest import Project, wait_for


def _ping(project: Project) -> dict[str, Any]:
    state = project.dir / ".shipyard"
    port = json.loads((state / "control.json").read_text())["port"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/v1/ping", headers={"Authorization": f"Bearer {(state / 'token').read_text().strip()}"})
        doc: dict[str, Any] = json.loads(conn.getresponse().read())
        return doc
    finally:
        conn.close()


def _recorded(project: Project, deployment: int) -> list[tuple[str, dict[str, Any]]]:
    store = open_store(None, project.dir / ".shipyard")
    try:
        return [(s.name, (s.detail or {}).get("params")) for s in store.list_steps(deployment)]
    finally:
        store.close()


def _steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(s["name"], s["params"]) for s in doc["steps"]]


CANARY = '\n[environments.staging.canary]\nsteps = [{ weight = 50 }, 100]\n'


@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_plan_lists_the_steps_the_deployment_records(project: Project, strategy: str) -> None:
    project.write_spec(replicas=2, extra=CANARY)
    project.commit("v1-spec")
    project.ok("up", "--detach", timeout=90)
    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    project.commit("v2")
    plan: Any = project.json("deploy", "--env", "staging", "--strategy", strategy, "--plan")
    res: Any = project.json("deploy", "--env", "staging", "--strategy", strategy)
    assert res["outcome"] == "succeeded", res
    assert plan["release"] == res["release"], "the plan names the release the deploy builds"
    planned = _steps(plan)
    assert planned[0][0] == "build" and planned[0][1]["release"] == res["release"]
    assert planned == _steps(res), "the deployment ran the plan's steps, in order, with its parameters"
    assert planned == _recorded(project, res["deployment"]), "and recorded them so"
    if strategy == "canary":
        phases = [p["phase"]["weight"] for name, p in planned if name == "canary"]
        assert phases == [50, 100]


SLOW = """
[environments.staging.canary]
steps = [{ weight = 50 }, 100]

[environments.staging.rollback]
error_rate = { above = "50%", for = "10s" }

[environments.staging.verify]
rate = 20
duration = "1s"
"""


def test_one_spec_load_per_deploy_and_edits_during_the_build_change_nothing(project: Project) -> None:
    project.write_spec(replicas=1, extra=SLOW)
    project.commit("v1-spec")
    project.ok("up", "--detach", timeout=90)
    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    spec = project.dir / "shipyard.toml"
    text = spec.read_text()
    # A slow build, committed (a release is built from git) but applied from the planned spec.
    spec.write_text(text.replace('build = ["python3 -m compileall -q ."]', 'build = ["sleep 3"]'))
    project.commit("v2")
    before = _ping(project)["spec_loads"]
    out: dict[str, Any] = {}

    def deploy() -> None:
        out["res"] = project.json("deploy", "--env", "staging", "--strategy", "canary", timeout=120)

    t = threading.Thread(target=deploy)
    t.start()
    log = project.dir / ".shipyard" / "logs" / "control.log"
    assert wait_for(lambda: _building(project), timeout=30), log.read_text()[-2000:]
    # Mid-build: more replicas, other canary steps, another variable. None of it may reach this deployment.
    spec.write_text(spec.read_text().replace("replicas = 1", "replicas = 3")
                    .replace("steps = [{ weight = 50 }, 100]", "steps = [{ weight = 10 }, { weight = 20 }, 100]")
                    .replace('GREETING = "hello"', 'GREETING = "edited"'))
    t.join(timeout=120)
    res = out["res"]
    assert res["outcome"] == "succeeded", res
    assert _ping(project)["spec_loads"] == before + 1, "plan, build, canary, verify, prune and watch: one load"
    names = [s["name"] for s in res["steps"]]
    assert names.count("canary") == 2 and "verify" in names
    assert [s["params"]["phase"]["weight"] for s in res["steps"] if s["name"] == "canary"] == [50, 100]
    assert res["watch"] is not None, "the post-deploy watch started from the planned triggers"
    status: Any = project.json("status", "--env", "staging")
    assert [i["release"] for i in status["instances"]].count(res["release"]) == 1, "replicas from the plan"
    assert project.get("/")[1]["greeting"] == "hello"


def _building(project: Project) -> bool:
    releases = project.dir / ".shipyard" / "releases"
    return any(p.is_dir() and not (p / ".shipyard-release.json").exists() for p in releases.glob("r*"))


def test_status_reads_the_spec_once(running: Project) -> None:
    before = _ping(running)["spec_loads"]
    running.json("status", "--env", "staging")
    assert _ping(running)["spec_loads"] == before + 1
