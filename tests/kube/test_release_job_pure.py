"""Pure parts of the release command's Job: its pods outside every selector of the environment, and the
wait loop's logic (engine/kube/render.release_job, control/kube/releasejob.run_release_job) on a manual
clock, against a scripted cluster. The real Job controller's side is tests/kube/test_kube_release_job.py."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shipyard.control.kube.releasejob import GRACE, run_release_job
from shipyard.engine.kube.render import ReleaseInput, release_job, render
from shipyard.errors import DeployFailed
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import parse_spec

SPEC = """
[app]
name = "shop"
run = "gunicorn app:app"
release = ["python manage.py migrate"]
release_timeout = "2m"
[app.health]
path = "/health"
[environments.prod]
port = 8080
replicas = 3
target = "kubernetes"
strategy = "{strategy}"
[environments.prod.kubernetes]
namespace = "shop"
labels = {{ team = "payments" }}
disruption = {{ min_available = 1 }}
network_policy = {{ from_namespaces = ["ingress"] }}
autoscale = {{ min = 2, max = 4 }}
"""


def inp(strategy: str = "rolling", slot: str | None = None) -> ReleaseInput:
    s = parse_spec(tomllib.loads(SPEC.format(strategy=strategy)), Path("/tmp/shipyard.toml"))
    return ReleaseInput(app=s.app, env=s.env("prod"), release="r2", slot=slot)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize(("strategy", "slot"), [("rolling", None), ("blue-green", "green")])
def test_release_job_pods_are_outside_every_selector(strategy: str, slot: str | None) -> None:
    i = inp(strategy, slot)
    job = release_job(i, list(i.app.release), i.app.release_timeout)
    assert job is not None
    pod = job["spec"]["template"]["metadata"]["labels"]
    objs = {o["kind"]: o for o in render(i)}
    selectors = {"Deployment": objs["Deployment"]["spec"]["selector"]["matchLabels"],
                 "Service": objs["Service"]["spec"]["selector"],
                 "PodDisruptionBudget": objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                 "NetworkPolicy": objs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]}
    # The HPA scales the Deployment and averages over the Deployment's selector: covered by its entry.
    assert objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == objs["Deployment"]["metadata"]["name"]
    for kind, sel in selectors.items():
        assert not selects(sel, pod), (kind, sel, pod)
        assert selects(sel, objs["Deployment"]["spec"]["template"]["metadata"]["labels"]), kind  # serving pods are
    assert pod["app.kubernetes.io/component"] == "release-job" and pod["app.kubernetes.io/name"] == "shop"
    assert pod["shipyard.dev/release"] == "r2" and pod["team"] == "payments"
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop-prod"  # the Job itself is findable
    assert job["spec"]["activeDeadlineSeconds"] == 120  # app.release_timeout
    assert job["spec"]["backoffLimit"] == 0


class ScriptedCluster:
    """Answers `get` for the Job with one scripted object per poll (the last repeats), lists one pending pod,
    and records what was applied and deleted: the wait loop's logic only."""

    namespace = "shop"

    def __init__(self, before: dict[str, Any] | None, script: list[dict[str, Any] | None]) -> None:
        self.before, self.script = before, script
        self.applied: list[str] = []
        self.deleted: list[str] = []
        self.gets = 0

    async def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        if not self.applied:  # before the apply: the earlier attempt, if any (gone once deleted)
            return None if self.deleted else self.before
        self.gets += 1
        return self.script[min(self.gets, len(self.script)) - 1]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest["metadata"]["name"])
        return {**manifest, "metadata": {**manifest["metadata"], "uid": "u-1"}}

    async def objects(self, api_version: str, kind: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        assert labels == {"batch.kubernetes.io/controller-uid": "u-1"}
        return [{"metadata": {"name": "job-pod"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}]

    async def delete(self, api_version: str, kind: str, name: str) -> None:
        self.deleted.append(name)

    async def pod_events(self, names: set[str]) -> list[dict[str, Any]]:
        return [{"involvedObject": {"kind": "Pod", "name": n}, "reason": "FailedScheduling",
                 "message": "0/1 nodes are available"} for n in sorted(names)]


def job(timeout: float = 10.0) -> dict[str, Any]:
    i = inp()
    out = release_job(i, ["migrate"], timeout)
    assert out is not None
    return out


def cond(kind: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"status": {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}}


def run(cluster: ScriptedCluster, j: dict[str, Any]) -> tuple[list[dict[str, Any]], float, str | None]:
    clock, steps = ManualClock(), []
    try:
        asyncio.run(run_release_job(cluster, clock, lambda line: None, j, steps, poll=1.0))  # type: ignore[arg-type]
    except DeployFailed as err:
        return steps, clock.monotonic(), str(err)
    return steps, clock.monotonic(), None


def test_no_controller_acting_ends_on_the_clock_and_deletes_the_job() -> None:
    cluster = ScriptedCluster(None, [{"status": {}}])  # never a condition: no Job controller
    steps, took, err = run(cluster, job(10.0))
    assert err is not None and "not ended 40s after it was created" in err and "job deleted" in err
    assert "PodScheduled=False Unschedulable" in err and "FailedScheduling: 0/1 nodes are available" in err
    assert 10.0 + GRACE < took <= 10.0 + GRACE + 1.0  # one poll past the deadline, not a poll more
    assert cluster.deleted == [job()["metadata"]["name"]]  # its pod must not run the migration later
    assert steps[-1]["status"] == "failed" and steps[-1]["pods"]


def test_the_controllers_failure_target_decides_at_once_and_keeps_the_job() -> None:
    cluster = ScriptedCluster(None, [{"status": {}}, {"status": {}},
                                     cond("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline")])
    steps, took, err = run(cluster, job())
    assert err is not None and "DeadlineExceeded: Job was active longer than specified deadline" in err
    assert took == 2.0 and cluster.deleted == []  # kept for kubectl describe until a retry
    assert steps == [{"kind": "release_job", "status": "failed", "name": job()["metadata"]["name"],
                      "reason": "DeadlineExceeded: Job was active longer than specified deadline",
                      "pods": ["pod job-pod: phase Pending; PodScheduled=False Unschedulable; "
                               "FailedScheduling: 0/1 nodes are available"], "duration_s": 2.0}]


def test_an_earlier_failed_attempt_is_replaced_and_a_completed_one_not_run_again() -> None:
    retry = ScriptedCluster(cond("Failed", "DeadlineExceeded"), [cond("SuccessCriteriaMet")])
    steps, _, err = run(retry, job())
    assert err is None and retry.deleted == [job()["metadata"]["name"]] and retry.applied == retry.deleted
    assert steps[-1]["status"] == "succeeded"

    done = ScriptedCluster(cond("Complete"), [])
    steps, took, err = run(done, job())
    assert err is None and done.applied == [] and steps[-1]["reused"] is True and took == 0.0
