"""``shipyard run`` on a kubernetes environment, pure: the one-off command as a Job, and what its Job and
pod say about how it ended.

The Job is the release command's Job (``render.release_job``: same image, config and secrets,
``backoffLimit: 0``, ``activeDeadlineSeconds`` from ``--timeout``) with the serving release's container
as it was applied — its image, env, ``envFrom`` (that release's hashed ConfigMap and Secret) and resources,
read from the release record — so the command sees what the serving pods see, whatever the checkout's
spec says now. The argv runs as given (no shell), as the local ``run`` does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.engine.kube.render import CONTAINER, Manifest, ReleaseInput, job_pod_labels, release_job

RUN_LABEL = "shipyard.dev/run"
COMPONENT = "run"
# Copied from the serving container: what makes the command see the release's code, config and secrets.
FROM_TEMPLATE = ("image", "imagePullPolicy", "env", "envFrom", "resources")
# A Job the CLI could not delete (killed outright) is garbage-collected by the TTL controller after this.
TTL_SECONDS = 3600


def run_id(now: float, token: str) -> str:
    """``20261202t063000-3f9a``: sortable, DNS-safe, unique with a random ``token``."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dt%H%M%S")
    return f"{stamp}-{re.sub(r'[^a-z0-9]', '', token.lower())[:4]}"


def template_container(manifests: Sequence[Manifest]) -> dict[str, Any] | None:
    """The app container of a release record's Deployment (or a canary's Rollout), or None."""
    for m in manifests:
        if m["kind"] in ("Deployment", "Rollout"):
            for c in m["spec"]["template"]["spec"].get("containers", []):
                if c.get("name") == CONTAINER:
                    return dict(c)
    return None


def run_job(inp: ReleaseInput, argv: Sequence[str], timeout: float, rid: str, *,
            template: Mapping[str, Any] | None = None, keep: bool = False) -> Manifest:
    """The Job that runs ``argv`` once in ``inp``'s release (``template``: its container as applied)."""
    job = release_job(inp, [shlex.join(argv)], timeout)
    assert job is not None  # one command given
    name = f"{inp.base[:30]}-run-{rid}"
    labels = {**job["metadata"]["labels"], "app.kubernetes.io/component": COMPONENT, RUN_LABEL: rid}
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    for key in FROM_TEMPLATE:
        if template is not None and key in template:
            container[key] = template[key]
    container["command"] = list(argv)
    pod["metadata"]["labels"] = job_pod_labels(inp, labels)  # outside every selector of the environment
    if inp.env.kube.service_account:
        pod["spec"]["serviceAccountName"] = inp.env.kube.service_account
    job["metadata"] = {**job["metadata"], "name": name, "labels": labels,
                       "annotations": {"shipyard.dev/command": shlex.join(argv)[:1000]}}
    if not keep:
        job["spec"]["ttlSecondsAfterFinished"] = TTL_SECONDS
    return job


@dataclass(frozen=True)
class ContainerState:
    state: str  # waiting | running | terminated | unknown
    exit_code: int | None = None
    reason: str | None = None


def container_state(pod: Mapping[str, Any] | None) -> ContainerState:
    """The app container's state as the pod's status reports it."""
    for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") != CONTAINER:
            continue
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"] is not None:
            t = state["terminated"]
            return ContainerState("terminated", t.get("exitCode"), t.get("reason"))
        if state.get("running") is not None:
            return ContainerState("running")
        waiting = state.get("waiting") or {}
        return ContainerState("waiting", reason=waiting.get("reason"))
    return ContainerState("unknown")


def has_output(pod: Mapping[str, Any] | None) -> bool:
    """Whether the pod's container has started, so the API server can serve its log."""
    return container_state(pod).state in ("running", "terminated")


@dataclass(frozen=True)
class RunVerdict:
    done: bool
    exit_code: int = 1
    reason: str | None = None


def verdict(job: Mapping[str, Any] | None, pod: Mapping[str, Any] | None) -> RunVerdict:
    """Whether the Job has ended and with what exit code: the container's when the pod reports it, else 0
    for a complete Job and 1 for a failed one (its deadline passed, its pod was lost or never started)."""
    if job is None:
        return RunVerdict(True, 1, "the Job was deleted before it finished")
    conds = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []
             if c.get("status") == "True"}
    known = container_state(pod)
    code = known.exit_code if known.state == "terminated" else None
    # SuccessCriteriaMet / FailureTarget: the outcome is decided; Complete / Failed follow once the pods have
    # terminated (Kubernetes 1.31+), which a pod on an unreachable node may never do.
    if "Complete" in conds or "SuccessCriteriaMet" in conds:
        return RunVerdict(True, code if code is not None else 0)
    failed = conds.get("Failed") or conds.get("FailureTarget")
    if failed is None:
        return RunVerdict(False)
    why = f"{failed.get('reason') or 'Failed'}: {failed.get('message') or ''}".rstrip(": ")
    return RunVerdict(True, code if code else 1, why)


def job_name_label(name: str) -> dict[str, str]:
    """The label the Job controller puts on its pods."""
    return {"batch.kubernetes.io/job-name": name}
