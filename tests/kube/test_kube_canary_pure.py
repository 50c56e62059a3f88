"""Pure parts of canaries on Kubernetes: Argo Rollouts objects from the spec, the AnalysisTemplates' PromQL
(checked by promtool), a Rollout's phase, and the promote/abort/pause/resume patches."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shipyard.control.kube.rollouts import check_canary
from shipyard.engine.kube.canary_analysis import unmapped
from shipyard.engine.kube.render import ReleaseInput, deployment
from shipyard.engine.kube.rollout import canary_steps, render_canary
from shipyard.engine.kube.rollout_status import patches, rollout_phase
from shipyard.errors import BadInput
from shipyard.primitives.spec import Spec, parse_spec

PROM = "http://prom.example:9090"
BASE = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.prod]
port = 8080
replicas = 4
target = "kubernetes"
strategy = "canary"
{canary}
[environments.prod.kubernetes]
namespace = "shop"
prometheus = "{prom}"
{kube}
{rollback}
"""


def spec(canary: str = "", rollback: str = "", kube: str = "", prom: str = PROM) -> Spec:
    text = BASE.format(canary=canary, rollback=rollback, kube=kube, prom=prom)
    if not prom:
        text = text.replace('prometheus = ""\n', "")
    return parse_spec(tomllib.loads(text), Path("/tmp/shipyard.toml"))


def inp(s: Spec, release: str = "r2") -> ReleaseInput:
    return ReleaseInput(app=s.app, env=s.env("prod"), release=release, config={"A": "1"}, secrets={"K": "v"},
                        secrets_version=1)


def by_kind(objs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def test_short_form_steps_are_weights_with_a_bake_each() -> None:
    s = spec('canary = { steps = [10, 50, 100], step_duration = "30s" }')
    assert canary_steps(s.env("prod").canary, "svc-prod", []) == [  # type: ignore[arg-type]
        {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {"duration": "30s"}},
        {"setWeight": 100}]


def test_full_form_steps_map_one_to_one() -> None:
    s = spec('canary = { steps = [{ pause = {} }, { weight = 20 }, { pause = "1m" }, { analysis = "smoke" }, '
             '{ weight = 60 }, { pause = {} }], analysis = { smoke = { duration = "40s", p99 = { above = "500ms" } } } }')
    args = [{"name": "canary", "value": "r2"}, {"name": "stable", "value": "r1"}]
    assert canary_steps(s.env("prod").canary, "svc-prod", args) == [  # type: ignore[arg-type]
        {"pause": {}}, {"setWeight": 20}, {"pause": {"duration": "60s"}},
        {"analysis": {"templates": [{"templateName": "svc-prod-analysis-smoke"}], "args": args}},
        {"setWeight": 60}, {"pause": {}}]


def test_rollout_replaces_the_deployment_with_its_pod_template() -> None:
    s = spec('canary = { steps = [25, 100] }', kube="autoscale = { min = 2, max = 6 }")
    i = inp(s)
    objs = by_kind(render_canary(i, "r1", PROM))
    assert "Deployment" not in objs
    ro = objs["Rollout"][0]
    dep = deployment(i)
    assert ro["apiVersion"] == "argoproj.io/v1alpha1" and ro["metadata"] == dep["metadata"]
    assert ro["spec"]["template"] == dep["spec"]["template"]  # content-hashed ConfigMap/Secret as for Deployments
    assert ro["spec"]["selector"] == dep["spec"]["selector"]
    assert "replicas" not in ro["spec"]  # the autoscaler's field
    assert ro["spec"]["progressDeadlineAbort"] is True and ro["spec"]["rollbackWindow"] == {"revisions": 5}
    canary = ro["spec"]["strategy"]["canary"]
    assert (canary["maxSurge"], canary["maxUnavailable"]) == (1, 0)
    assert canary["analysis"] == {"templates": [{"templateName": "svc-prod-canary"}],
                                  "args": [{"name": "canary", "value": "r2"}, {"name": "stable", "value": "r1"}],
                                  "startingStep": 1}
    assert objs["HorizontalPodAutoscaler"][0]["spec"]["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "svc-prod"}
    order = [o["kind"] for o in render_canary(i, "r1", PROM)]
    assert order.index("AnalysisTemplate") < order.index("Rollout")  # the template exists before it is named


def test_first_canary_deploy_is_its_own_stable() -> None:
    ro = by_kind(render_canary(inp(spec()), None, PROM))["Rollout"][0]
    assert ro["spec"]["strategy"]["canary"]["analysis"]["args"][1] == {"name": "stable", "value": "r2"}
    assert ro["spec"]["replicas"] == 4


ROLLBACK = """[environments.prod.rollback]
error_rate = { above = "5%", for = "1m" }
p95 = { above = "800ms", for = "30s" }
request_rate = { below = 2, for = "20s" }
cpu = { above = "90%" }
prometheus = { url = "http://other:9090", query = "sum(up)", below = 1, for = "5s" }
"""


def metrics_of(objs: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    t = next(o for o in objs if o["kind"] == "AnalysisTemplate" and o["metadata"]["name"] == name)
    assert t["spec"]["args"] == [{"name": "canary"}, {"name": "stable"}]
    return {m["name"]: m for m in t["spec"]["metrics"]}


def test_rollback_triggers_become_failure_only_metrics_held_for_their_window() -> None:
    objs = render_canary(inp(spec(rollback=ROLLBACK)), "r1", PROM)
    m = metrics_of(objs, "svc-prod-canary")
    assert set(m) == {"judgement-errors", "judgement-latency", "error-rate", "latency-p95", "request-rate",
                      "prometheus-0"}
    err = m["error-rate"]
    assert "successCondition" not in err  # no data is not a failure
    assert err["failureCondition"] == "len(result) > 0 && !isNaN(result[0]) && result[0] > 0.05"
    assert err["failureLimit"] == 0 and err["interval"] == "10s"
    q = err["provider"]["prometheus"]["query"]
    assert q.startswith("min_over_time((") and q.endswith(")[60s:10s])")
    assert 'release="{{args.canary}}",code=~"5xx|none"' in q and 'env="prod"' in q
    assert err["provider"]["prometheus"]["address"] == PROM
    assert m["latency-p95"]["failureCondition"].endswith("result[0] > 0.8")
    assert "histogram_quantile(0.95" in m["latency-p95"]["provider"]["prometheus"]["query"]
    rr = m["request-rate"]
    assert rr["failureCondition"].endswith("result[0] < 2") and rr["provider"]["prometheus"]["query"].startswith("max_over_time(")
    custom = m["prometheus-0"]
    assert custom["provider"]["prometheus"] == {"address": "http://other:9090", "query": "max_over_time((sum(up))[5s:5s])",
                                                "timeout": 10}
    assert unmapped(spec(rollback=ROLLBACK).env("prod").rollback) == ["cpu"]


def test_judgement_is_inconclusive_without_enough_samples_and_pauses_after_the_limit() -> None:
    s = spec('canary = { steps = [10, 100], step_duration = "40s", min_samples = 150, inconclusive_limit = "1m", '
             'error_tolerance = "2%", latency_tolerance_min = "15ms" }')
    m = metrics_of(render_canary(inp(s), "r1", PROM), "svc-prod-canary")
    j = m["judgement-errors"]
    assert j["successCondition"].endswith("result[0] <= 0") and j["failureCondition"].endswith("result[0] > 0")
    assert j["inconclusiveLimit"] == 6 and j["interval"] == "10s"  # 1m of 10 s measurements
    q = j["provider"]["prometheus"]["query"]
    assert ">= 150" in q and "clamp_min(0.5 *" in q and ", 0.02)" in q and "[40s]" in q
    assert ", 0.015))" in m["judgement-latency"]["provider"]["prometheus"]["query"]


def test_named_analysis_template_runs_for_its_duration() -> None:
    s = spec('canary = { steps = [{ weight = 20 }, { analysis = "smoke" }], '
             'analysis = { smoke = { duration = "30s", p99 = { above = "500ms", for = "10s" } } } }')
    m = metrics_of(render_canary(inp(s), "r1", PROM), "svc-prod-analysis-smoke")
    assert set(m) == {"judgement-errors", "judgement-latency", "latency-p99"}
    assert m["latency-p99"]["count"] == 3 and m["judgement-errors"]["count"] == 3  # 30 s of 10 s measurements


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (the Argo arguments substituted, as the controller does before asking)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run `make setup` (scripts/setup-system.sh installs prometheus)")
    s = spec('canary = { steps = [10, { analysis = "smoke" }, 100], analysis = { smoke = { p50 = { above = "1s" } } } }',
             rollback=ROLLBACK)
    rules = []
    for t in render_canary(inp(s), "r1", PROM):
        if t["kind"] == "AnalysisTemplate":
            for m in t["spec"]["metrics"]:
                q = m["provider"]["prometheus"]["query"].replace("{{args.canary}}", "r2").replace("{{args.stable}}", "r1")
                rules.append({"record": f"check:{m['name'].replace('-', '_')}", "expr": q})
    assert len(rules) == 9  # 2 judgement + 4 triggers in the background; 2 judgement + p50 in "smoke"
    (tmp_path / "rules.yml").write_text(json.dumps({"groups": [{"name": "canary", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_canary_without_prometheus_is_bad_input_naming_the_keys() -> None:
    with pytest.raises(BadInput) as err:
        check_canary(inp(spec(prom="")))
    assert "[metrics] prometheus" in str(err.value) and "environments.prod.kubernetes.prometheus" in str(err.value)
    with pytest.raises(BadInput) as err:
        check_canary(inp(spec(prom="http://user:pw@prom:9090")))
    assert "credentials" in str(err.value) and "pw" not in str(err.value)
    with pytest.raises(BadInput) as err:
        check_canary(inp(spec(rollback='[environments.prod.rollback]\nprometheus = { url = "https://a:b@p", '
                                       'query = "up", below = 1 }\n')))
    assert "environments.prod.rollback.prometheus[0].url" in str(err.value)


def ro(status: dict[str, Any], *, generation: int = 2, paused: bool = False, steps: int = 3) -> dict[str, Any]:
    return {"metadata": {"name": "svc-prod", "generation": generation},
            "spec": {"paused": paused, "strategy": {"canary": {"steps": [{"setWeight": 10}] * steps}}},
            "status": {"observedGeneration": "2", **status}}


def test_rollout_phase_reads_the_controller_once_it_saw_the_spec() -> None:
    assert rollout_phase(ro({"phase": "Healthy"}, generation=3)).message == "waiting for rollout spec update to be observed"
    assert not rollout_phase(ro({"phase": "Healthy"}, generation=3)).done
    unpausing = rollout_phase(ro({"phase": "Paused", "controllerPause": True}))
    assert (unpausing.phase, unpausing.message) == ("Progressing", "waiting for rollout to unpause")
    paused = rollout_phase(ro({"phase": "Paused", "message": "CanaryPauseStep", "currentStepIndex": 1,
                               "pauseConditions": [{"reason": "CanaryPauseStep"}], "controllerPause": True,
                               "canary": {"weights": {"canary": {"weight": 10}}}}))
    assert paused.phase == "Paused" and paused.describe() == "Paused at step 1/3 (10% canary): CanaryPauseStep"
    assert rollout_phase(ro({"phase": "Healthy"})).done
    bad = rollout_phase(ro({"phase": "Degraded", "abort": True, "message": "RolloutAborted: Metric \"error-rate\" assessed Failed"}))
    assert bad.failed and bad.aborted and "error-rate" in bad.message
    # Abort patched but not acted on yet: still Paused as far as the controller said; not an outcome yet.
    aborting = rollout_phase(ro({"phase": "Paused", "message": "CanaryPauseStep", "abort": True}))
    assert not aborting.failed and not aborting.done and aborting.phase == "Progressing"


def test_patches_are_kubectl_argo_rollouts() -> None:
    gate = ro({"pauseConditions": [{"reason": "CanaryPauseStep"}], "controllerPause": True, "currentStepIndex": 1})
    assert patches(gate, "promote").status == {"status": {"pauseConditions": None}}
    assert patches(gate, "promote").spec is None
    assert patches(ro({"currentStepIndex": 1}), "promote").status == {"status": {"pauseConditions": None,
                                                                                  "currentStepIndex": 2}}
    manual = ro({"pauseConditions": [{"reason": "CanaryPauseStep"}]}, paused=True)
    assert patches(manual, "promote").spec == {"spec": {"paused": False}}
    inconclusive = ro({"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}], "controllerPause": True,
                       "currentStepIndex": 2, "canary": {"currentStepAnalysisRunStatus": {"status": "Inconclusive"}}})
    assert patches(inconclusive, "promote").status == {"status": {"pauseConditions": None, "controllerPause": False,
                                                                  "currentStepIndex": 3}}
    assert patches(ro({"currentPodHash": "a", "stableRS": "b"}), "promote_full").status == {"status": {"promoteFull": True}}
    assert patches(ro({"currentPodHash": "a", "stableRS": "a"}), "promote_full").status is None
    assert patches(gate, "abort").status == {"status": {"abort": True}}
    assert patches(gate, "pause").spec == {"spec": {"paused": True}}
    assert patches(manual, "resume").spec == {"spec": {"paused": False}}


class FakeCluster:
    """Answers `get` with one scripted Rollout per poll (the last one repeats): the wait loop's logic only."""

    namespace = "shop"

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = script

    async def get(self, api_version: str, kind: str, name: str) -> dict[str, Any]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def run_wait(script: list[dict[str, Any]], timeout: float = 10.0) -> tuple[str, float]:
    import asyncio

    from shipyard.control.kube.rollouts import wait
    from shipyard.errors import DeployFailed
    from shipyard.primitives.clock import ManualClock

    clock, lines = ManualClock(), []
    try:
        st, took = asyncio.run(wait(FakeCluster(script), "svc-prod", clock, lines.append, timeout, poll=1.0))  # type: ignore[arg-type]
        return f"done {st.phase}", took
    except DeployFailed as err:
        return f"failed {err}", clock.monotonic()


def test_wait_counts_progress_not_pauses_and_ends_on_healthy_or_degraded() -> None:
    paused = ro({"phase": "Paused", "message": "CanaryPauseStep", "pauseConditions": [{"reason": "CanaryPauseStep"}],
                 "currentStepIndex": 2})
    progressing = ro({"phase": "Progressing", "message": "more replicas need to be updated"})
    # 30 s paused at a gate with a 10 s timeout: not a timeout, a human is expected there.
    outcome, took = run_wait([progressing] * 3 + [paused] * 30 + [ro({"phase": "Healthy"})])
    assert outcome == "done Healthy" and took == 33.0
    outcome, _ = run_wait([progressing] * 5 + [ro({"phase": "Degraded", "abort": True,
                                                  "message": "RolloutAborted: Metric \"p95\" assessed Failed"})])
    assert outcome == 'failed rollout svc-prod aborted: RolloutAborted: Metric "p95" assessed Failed'
    outcome, took = run_wait([progressing])
    assert outcome.startswith("failed rollout svc-prod not done after 10s of progress") and took == 11.0
    outcome, took = run_wait([ro({"phase": "Healthy"}, generation=3)], timeout=600)
    assert "no controller observed its new spec within 60s" in outcome and took == 61.0
