"""Pure parts of `shipyard run` / `logs` on kubernetes: the run Job rendered from the serving container, the
verdict read from a Job and its pod, the kubelet's stamps split off and lines interleaved across pods."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from shipyard.control.kube.podlogs import PodLine, newest, split_stamp
from shipyard.engine.kube.render import ReleaseInput, deployment
from shipyard.engine.kube.run_job import container_state, run_id, run_job, template_container, verdict
from shipyard.primitives.spec import parse_spec

SPEC = """
[app]
name = "shop"
run = "gunicorn app:app"
[app.health]
path = "/health"
[environments.prod]
port = 8080
target = "kubernetes"
[environments.prod.kubernetes]
namespace = "shop"
labels = { team = "payments" }
"""


def inp(release: str = "r20260101000000-abcdef1", config: dict[str, str] | None = None) -> ReleaseInput:
    s: Any = parse_spec(tomllib.loads(SPEC), Path("/tmp/shipyard.toml"))
    return ReleaseInput(app=s.app, env=s.env("prod"), release=release, config=config or {"A": "1"})


def test_run_job_takes_the_recorded_container_and_runs_the_argv_as_given() -> None:
    served = deployment(inp(config={"A": "as-deployed"}))
    template = template_container([served])
    assert template is not None
    job = run_job(inp(config={"A": "changed-since"}), ["python", "-c", "print('a b')"], 90.4, "20260101t000000-ab12",
                  template=template)
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["python", "-c", "print('a b')"]  # no shell in between
    assert c["envFrom"] == template["envFrom"] and c["image"] == template["image"]
    assert "ports" not in c and "livenessProbe" not in c  # a one-off: no Service traffic, no probes
    assert job["metadata"]["name"] == "shop-prod-run-20260101t000000-ab12"
    assert job["metadata"]["annotations"]["shipyard.dev/command"] == "python -c 'print('\"'\"'a b'\"'\"')'"
    assert job["spec"]["activeDeadlineSeconds"] == 91 and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "run" and labels["team"] == "payments"
    assert labels["shipyard.dev/run"] == "20260101t000000-ab12"
    assert "app.kubernetes.io/instance" not in labels  # outside the Deployment's selector (HPA, PDB, Service)
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop-prod"
    assert "ttlSecondsAfterFinished" not in run_job(inp(), ["true"], 5, "x", keep=True)["spec"]


def test_run_id_is_dns_safe_and_sortable() -> None:
    assert run_id(1_764_657_000.0, "3F9A") == "20251202t063000-3f9a"


def _job(*conds: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": t, "status": "True", "reason": r, "message": f"{r} happened"}
                                      for t, r in conds]}}


def _pod(state: dict[str, Any]) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": "app", "state": state}]}}


def test_verdict_takes_the_containers_exit_code_else_the_jobs_outcome() -> None:
    running = _pod({"running": {"startedAt": "x"}})
    assert not verdict(_job(), running).done
    assert container_state(running).state == "running"
    assert verdict(_job(("Complete", "")), _pod({"terminated": {"exitCode": 0}})).exit_code == 0
    failed = verdict(_job(("Failed", "BackoffLimitExceeded")), _pod({"terminated": {"exitCode": 3}}))
    assert failed.done and failed.exit_code == 3 and failed.reason == "BackoffLimitExceeded: BackoffLimitExceeded happened"
    # Decided before the pods have terminated (1.31+): FailureTarget; no exit code known: 1.
    lost = verdict(_job(("FailureTarget", "DeadlineExceeded")), _pod({"waiting": {"reason": "ContainerCreating"}}))
    assert lost.done and lost.exit_code == 1 and lost.reason is not None and "DeadlineExceeded" in lost.reason
    assert verdict(_job(("SuccessCriteriaMet", "")), None).exit_code == 0
    # A failed Job whose container said 0 (killed at its deadline as it ended) is still a failure.
    assert verdict(_job(("Failed", "DeadlineExceeded")), _pod({"terminated": {"exitCode": 0}})).exit_code == 1
    assert verdict(None, None).done and verdict(None, None).exit_code == 1


def test_kubelet_stamps_are_split_and_pods_interleave_by_them() -> None:
    line = split_stamp("p", "2025-12-02T06:37:18.496131123Z GET / 200")
    assert line.text == "GET / 200" and abs(line.time - 1_764_657_438.496131) < 1e-5  # type: ignore[operator]
    assert split_stamp("p", "no stamp here") == PodLine("p", "no stamp here", None)
    a = [PodLine("a", "a1", 1.0), PodLine("a", "a2", 3.0)]
    b = [PodLine("b", "b1", 2.0), PodLine("b", "b2", 4.0)]
    assert [x.text for x in newest({"a": a, "b": b}, None)] == ["a1", "b1", "a2", "b2"]
    assert [x.text for x in newest({"a": a, "b": b}, 3)] == ["b1", "a2", "b2"]
    assert newest({"a": a}, 0) == []
