"""Canary rollouts end to end: real control plane, router, instances and traffic on loopback.

Each test deploys v1 (blue-green: nothing to compare with yet), then a v2 canary whose faults come from
the spec's [defaults.env] (new instances get the new config; the stable set keeps its own).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from traffic import Traffic

from .conftest import Project, wait_for

CANARY = """strategy = "canary"
canary = {{ steps = {steps}, step_duration = "{step}", min_samples = {min_samples}, inconclusive_limit = "{limit}" }}
"""


def _setup(p: Project, *, steps: str = "[20, 50, 100]", step: str = "2s", min_samples: int = 20,
           limit: str = "30s", rollback: str = "", replicas: int = 2) -> str:
    p.write_spec(replicas=replicas, extra=CANARY.format(steps=steps, step=step, min_samples=min_samples, limit=limit)
                 + rollback)
    p.ok("up", "--detach", timeout=90)
    first: Any = p.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    p.commit("v2")
    return str(first["release"])


def _fault(p: Project, **env: str) -> None:
    """Faults for the next release only: the running instances keep the environment they started with."""
    spec = p.dir / "shipyard.toml"
    lines = "".join(f'{k} = "{v}"\n' for k, v in env.items())
    spec.write_text(spec.read_text().replace('GREETING = "hello"\n', f'GREETING = "hello"\n{lines}'))


def _deploy_async(p: Project) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "staging", "--json"], cwd=p.dir,
                            env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str], timeout: float = 120) -> Any:
    out, err = proc.communicate(timeout=timeout)
    assert out.strip(), err
    return json.loads(out)


def _canary(p: Project) -> Any:
    st: Any = p.json("status", "--env", "staging")
    return st.get("canary")


def test_healthy_canary_goes_to_100_without_a_failed_request(project: Project) -> None:
    _setup(project)
    with Traffic(project.port, rate=150, connections=6) as traffic:
        res: Any = project.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded", res
    names = [s["name"] for s in res["steps"]]
    assert names.count("canary") == 5, names  # 20, bake, 50, bake, 100 (the route step promotes)
    bakes = [s for s in res["steps"] if s["name"] == "canary" and "bake" in s["description"]]
    assert all(s["status"] == "succeeded" for s in bakes)
    c = traffic.counts
    assert c.failed == 0, f"{c.summary()} {dict(c.errors)} {dict(c.statuses)}"
    assert c.versions["v1"] > 0 and c.versions["v2"] > 0
    st: Any = project.json("status", "--env", "staging")
    assert st["release"] == res["release"] and st["weights"] == {res["release"]: 100}
    assert st["canary"] is None


def test_erroring_canary_rolls_back_with_the_failing_condition(project: Project) -> None:
    v1 = _setup(project, step="30s")
    _fault(project, FAULT_ERROR_RATE="0.3")
    with Traffic(project.port, rate=150, connections=6) as traffic:
        t0 = time.monotonic()
        res: Any = project.json("deploy", "--env", "staging", code=1)
        took = time.monotonic() - t0
    assert res["outcome"] == "rolled_back", res
    failing = res["rollback"]["canary"]["failing"]
    assert any(f["condition"] == "judgement: errors" for f in failing), failing
    errors = next(f for f in failing if f["condition"] == "judgement: errors")
    assert errors["value"]["canary"] > 0.1 and errors["value"]["stable"] < 0.01
    assert errors["window"][1] > errors["window"][0]
    assert took < 25, f"a 30% error canary took {took:.1f}s to roll back (step_duration is 30s)"
    c = traffic.counts
    assert c.failed_versions.get("v1", 0) == 0 and c.failed_versions.get("?", 0) == 0, (c.summary(), c.errors)
    assert not c.errors, dict(c.errors)
    st: Any = project.json("status", "--env", "staging")
    assert st["release"] == v1 and st["weights"] == {v1: 100}
    assert {i["release"] for i in st["instances"]} == {v1}, "the canary instances are stopped"
    hist: Any = project.json("history", "--env", "staging")
    assert hist[0]["outcome"] == "rolled_back" and "worse than stable" in (hist[0]["reason"] or "")
    recorded = hist[0]["rollback"]["canary"]["failing"]
    assert recorded[0]["condition"] == "judgement: errors" and recorded[0]["window"] == errors["window"]
    human = project.ok("history", "--env", "staging").stdout
    assert "judgement: errors" in human and "error rate canary" in human


def test_crash_looping_canary_rolls_back(project: Project) -> None:
    v1 = _setup(project, step="30s")
    _fault(project, FAULT_CRASH_AFTER_S="1.5")
    with Traffic(project.port, rate=100, connections=4) as traffic:
        res: Any = project.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "rolled_back", res
    failing = res["rollback"]["canary"]["failing"]
    assert any("restart" in f["condition"] or "errors" in f["condition"] for f in failing), failing
    assert traffic.counts.failed_versions.get("v1", 0) == 0
    assert project.get("/")[1]["version"] == "v1"
    assert project.json("status", "--env", "staging")["release"] == v1  # type: ignore[index]


def test_manual_gate_pause_resume_promote_and_abort(project: Project) -> None:
    v1 = _setup(project, steps='[{ weight = 20 }, { pause = {} }, { weight = 100 }]')
    proc = _deploy_async(project)
    try:
        # At the gate, once the first decision there is made (a collector tick after the step starts).
        assert wait_for(lambda: ((_canary(project) or {}).get("decision") or {}).get("action") == "wait", 60)
        c = _canary(project)
        assert c["step"]["kind"] == "gate" and c["weight"] == 20 and not c["paused"]
        assert "manual gate" in c["decision"]["reason"]
        project.ok("pause", "--env", "staging")
        assert _canary(project)["paused"] is True
        project.ok("resume", "--env", "staging")
        assert _canary(project)["paused"] is False
        bad = project.cli("resume", "--env", "staging")
        assert bad.returncode == 3 and "not paused" in bad.stderr
        project.ok("promote", "--env", "staging")
        res = _result(proc)
    finally:
        proc.kill()
    assert res["outcome"] == "succeeded", res
    v2 = res["release"]
    assert project.get("/")[1]["version"] == "v2"
    no = project.cli("abort", "--env", "staging")
    assert no.returncode == 3 and "no canary rollout is running" in no.stderr

    project.commit("v3")
    proc = _deploy_async(project)
    try:
        assert wait_for(lambda: ((_canary(project) or {}).get("step") or {}).get("kind") == "gate", 60)
        project.ok("abort", "--env", "staging")
        res = _result(proc)
    finally:
        proc.kill()
    assert res["outcome"] == "rolled_back" and "aborted by the operator" in res["reason"], res
    st: Any = project.json("status", "--env", "staging")
    assert st["release"] == v2 and st["weights"] == {v2: 100} and v1 != v2


def test_too_little_traffic_is_inconclusive_and_pauses_for_a_human(project: Project) -> None:
    _setup(project, steps="[50, 100]", step="1s", min_samples=100, limit="2s")
    proc = _deploy_async(project)
    try:
        assert wait_for(lambda: (_canary(project) or {}).get("paused") is True, 60)
        c = _canary(project)
        why = c["paused_because"]
        assert "inconclusive" in why and "too little traffic" in why and "canary 0 requests" in why, why
        # Later decisions while paused keep saying what the judgement sees.
        assert "too little traffic" in c["decision"]["reason"], c["decision"]
        assert c["decision"]["verdict"]["outcome"] == "inconclusive"
        project.ok("promote", "--env", "staging", "--full")
        res = _result(proc)
    finally:
        proc.kill()
    assert res["outcome"] == "succeeded", res
    assert project.get("/")[1]["version"] == "v2"


def test_plan_shows_steps_and_triggers(project: Project) -> None:
    _setup(project, rollback='\n[environments.staging.rollback]\nerror_rate = { above = "5%", for = "5m" }\n'
           'p95 = { above = "2s", for = "3m" }\nhealth_failures = 3\n')
    out = project.ok("deploy", "--env", "staging", "--plan").stdout
    for text in ("route 20% canary / 80% stable", "bake 2s at 20%", "error_rate above 5% for 5m",
                 "p95 above 2s for 3m", "health_failures: 3", "watch", "Mann-Whitney"):
        assert text in out, (text, out)
    plan: Any = project.json("deploy", "--env", "staging", "--plan")
    assert [s["kind"] for s in plan["canary"]["steps"]] == ["weight", "bake", "weight", "bake", "weight", "promote"]
    assert len(plan["rollback_triggers"]) == 3


def test_post_deploy_watch_rolls_back_to_the_warm_previous_release(project: Project) -> None:
    project.write_spec(replicas=2, extra='watch = "1m"\n[environments.staging.rollback]\n'
                       'error_rate = { above = "20%", for = "2s" }\n')
    project.ok("up", "--detach", timeout=90)
    v1: Any = project.json("deploy", "--env", "staging")
    project.commit("v2")
    _fault(project, FAULT_ERROR_RATE="0.5")
    with Traffic(project.port, rate=100, connections=4):
        res: Any = project.json("deploy", "--env", "staging")  # blue-green: readiness does not see errors
        assert res["outcome"] == "succeeded" and res["watch"]["previous"] == v1["release"], res
        assert wait_for(lambda: project.json("status", "--env", "staging")["release"]  # type: ignore[index]
                        == v1["release"], 30)
    hist: Any = project.json("history", "--env", "staging")
    assert hist[0]["kind"] == "rollback" and hist[0]["outcome"] == "succeeded"
    assert "post-deploy watch" in hist[0]["reason"] and "error_rate" in hist[0]["reason"]


def test_rollback_trigger_on_the_canary_rolls_back(project: Project) -> None:
    # health_failures = 2 fires before the supervisor's liveness restart (retries = 3).
    v1 = _setup(project, step="30s", rollback="\n[environments.staging.rollback]\nhealth_failures = 2\n")
    _fault(project, FAULT_HEALTH_FAIL="1")
    res: Any = project.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "rolled_back", res
    failing = res["rollback"]["canary"]["failing"]
    assert any(f["condition"].startswith("health_failures") for f in failing), failing
    hf = next(f for f in failing if f["condition"].startswith("health_failures"))
    assert hf["value"] >= 2 and hf["instance"]
    assert project.json("status", "--env", "staging")["release"] == v1  # type: ignore[index]
