"""The release command (migrations) of a kube deploy: its Job applied, waited on until it has ended, and a
deploy that goes no further when it did not succeed.

Bounded twice: the Job's ``activeDeadlineSeconds`` (the release command's timeout, ``app.release_timeout``)
counts from the Job's start, so the Job controller fails a pod that never schedules, never pulls its image
or sits on a lost node (``DeadlineExceeded``); and a deadline on the clock ``GRACE`` seconds later ends the
wait if no controller acts, deleting the Job so its pod cannot run the command after the deploy gave up.
The outcome is read as ``shipyard run`` reads it (``engine/kube/run_job.verdict``): ``FailureTarget`` and
``SuccessCriteriaMet`` decide, without waiting for pods on an unreachable node to terminate.

A Job of the same release that already failed (an earlier attempt) is deleted and created again, so a retry
runs the command afresh; one that completed is not run twice. A failed Job is otherwise kept for
``kubectl describe`` / ``kubectl logs`` until that retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.control.kube.cluster import Cluster
from shipyard.engine.kube.render import Manifest
from shipyard.engine.kube.run_job import verdict
from shipyard.engine.kube.status import pod_reasons
from shipyard.errors import DeployFailed
from shipyard.primitives.clock import Clock

Emit = Callable[[str], None]
GRACE = 30.0  # after activeDeadlineSeconds: the Job controller's time to act before the CLI gives up itself
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"  # on the Job's pods: this Job's, not a deleted namesake's


async def run_release_job(cluster: Cluster, clock: Clock, emit: Emit, job: Manifest, steps: list[dict[str, Any]],
                          poll: float = 0.5) -> None:
    """Apply ``job`` and wait until it has ended; DeployFailed (with the pods' reasons) unless it succeeded."""
    t0 = clock.monotonic()
    name = job["metadata"]["name"]
    limit = float(job["spec"]["activeDeadlineSeconds"])
    before = await cluster.get("batch/v1", "Job", name)
    if before is not None:
        v = verdict(before, None)
        if v.done and v.exit_code == 0:
            emit(f"release command: job {name} already completed for this release; not run again")
            steps.append({"kind": "release_job", "status": "succeeded", "name": name, "reused": True,
                          "duration_s": 0.0})
            return
        if v.done:
            await _replace_failed(cluster, clock, name, poll)
    live = await cluster.apply(job)
    uid = (live.get("metadata") or {}).get("uid")
    emit(f"release command: job {name} (deadline {limit:.0f}s)")
    deadline = t0 + limit + GRACE
    seen: dict[str, dict[str, Any]] = {}  # the pods as last seen: the controller deletes them at the deadline
    while True:
        obj = await cluster.get("batch/v1", "Job", name)
        for pod in await cluster.objects("v1", "Pod", labels={CONTROLLER_UID: uid} if uid else {"job-name": name}):
            seen[pod["metadata"]["name"]] = pod
        v = verdict(obj, None)
        if v.done and v.exit_code == 0:
            steps.append({"kind": "release_job", "status": "succeeded", "name": name,
                          "duration_s": round(clock.monotonic() - t0, 3)})
            return
        late = clock.monotonic() > deadline
        if v.done or late:
            reason = v.reason if v.done else (f"not ended {limit + GRACE:.0f}s after it was created "
                                              f"(activeDeadlineSeconds {limit:.0f}); job deleted")
            if late and obj is not None:
                await cluster.delete("batch/v1", "Job", name)  # its pod must not run the command later
            why = pod_reasons(list(seen.values()), await cluster.pod_events(set(seen)))
            steps.append({"kind": "release_job", "status": "failed", "name": name, "reason": reason, "pods": why,
                          "duration_s": round(clock.monotonic() - t0, 3)})
            raise DeployFailed(f"release command job {name} failed ({reason})" + ("; " + "; ".join(why) if why else ""))
        await clock.sleep(poll)


async def _replace_failed(cluster: Cluster, clock: Clock, name: str, poll: float) -> None:
    """An earlier attempt's failed Job deleted (a Job's template cannot change; the retry is a new Job)."""
    await cluster.delete("batch/v1", "Job", name)
    until = clock.monotonic() + GRACE
    while await cluster.get("batch/v1", "Job", name) is not None:
        if clock.monotonic() > until:
            raise DeployFailed(f"release command job {name} failed before and is still being deleted; try again")
        await clock.sleep(poll)
