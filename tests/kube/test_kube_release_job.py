"""The release command's Job (migrations) of a kube deploy against the real API server, controller manager,
scheduler and kwok node (tests/kube/harness.py): its pod is outside the Service's, the disruption budget's,
the network policy's and the Deployment's selectors (the real disruption controller counts only the serving
pods), and a Job whose pod cannot schedule fails at its deadline, with the scheduler's reason, applying
nothing else; a retry of that release runs the command afresh."""

from __future__ import annotations

import time
from typing import Any

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget
from sandbox import wait_for

from conftest import KubeProject

MIGRATE = '["python3 manage.py migrate"]'
RELEASE_JOB = {"app.kubernetes.io/component": "release-job"}


def deploy(p: KubeProject, *args: str, code: int = 0) -> dict[str, Any]:
    doc = p.json("deploy", "--env", "kube", *args, code=code)
    assert isinstance(doc, dict)
    return doc


def pods_of(admin: Client, ns: str, job: Job) -> list[Pod]:
    return list(admin.list(Pod, namespace=ns, labels={"batch.kubernetes.io/controller-uid": job.metadata.uid}))


def test_release_job_pod_is_selected_by_no_service_budget_or_policy(kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(release=MIGRATE, autoscale=False)  # FULL: disruption max_unavailable 1, network policy
    p.commit("v2")
    doc = deploy(p)
    assert doc["outcome"] == "succeeded", doc
    assert doc["steps"][0]["kind"] == "release_job" and doc["steps"][0]["status"] == "succeeded"
    [job] = admin.list(Job, namespace=ns, labels=RELEASE_JOB)
    [pod] = pods_of(admin, ns, job)
    assert pod.status.phase == "Succeeded"  # kwok's pod-complete stage; the pod stays with its Job
    assert pod.metadata.labels["app.kubernetes.io/component"] == "release-job"
    assert "app.kubernetes.io/instance" not in pod.metadata.labels

    selectors = {
        "Service": admin.get(Service, "svc-kube", namespace=ns).spec.selector,
        "PodDisruptionBudget": admin.get(PodDisruptionBudget, "svc-kube", namespace=ns).spec.selector.matchLabels,
        "NetworkPolicy": admin.get(NetworkPolicy, "svc-kube", namespace=ns).spec.podSelector.matchLabels,
        "Deployment": admin.get(Deployment, "svc-kube", namespace=ns).spec.selector.matchLabels,
    }
    for kind, selector in selectors.items():
        selected = list(admin.list(Pod, namespace=ns, labels=selector))
        assert pod.metadata.name not in {s.metadata.name for s in selected}, kind
        assert len(selected) == 2 and all(s.metadata.ownerReferences[0].kind == "ReplicaSet" for s in selected), kind

    # The disruption controller finds a scalable owner for every pod its budget selects (a Job's pod has
    # none, which would fail its sync) and expects the Deployment's two.
    def budget() -> Any:
        pdb = admin.get(PodDisruptionBudget, "svc-kube", namespace=ns)
        st = pdb.status
        return pdb if st and st.observedGeneration == pdb.metadata.generation and st.currentHealthy == 2 else None
    assert wait_for(budget, timeout=30), admin.get(PodDisruptionBudget, "svc-kube", namespace=ns).status
    st = admin.get(PodDisruptionBudget, "svc-kube", namespace=ns).status
    assert (st.expectedPods, st.desiredHealthy, st.disruptionsAllowed) == (2, 1, 1)
    assert {c.type: (c.status, c.reason) for c in st.conditions}["DisruptionAllowed"] == ("True", "SufficientPods")


def test_release_job_that_cannot_schedule_fails_at_its_deadline_and_applies_nothing(kproject: KubeProject,
                                                                                    admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(autoscale=False)
    p.commit("v1")
    first = deploy(p)
    assert first["outcome"] == "succeeded", first
    generation = admin.get(Deployment, "svc-kube", namespace=ns).metadata.generation
    configmaps = {cm.metadata.name for cm in admin.list(ConfigMap, namespace=ns)}
    parent = admin.get(ConfigMap, "svc-kube-applyset", namespace=ns).metadata.annotations

    # No node fits 500 CPUs: the Job's pod stays Pending until the Job's 3 s deadline (release_timeout).
    p.write_kube_spec(release=MIGRATE + '\nrelease_timeout = "3s"', cpu="500", autoscale=False, greeting="v2")
    p.commit("v2")
    t0 = time.monotonic()
    failed = deploy(p, code=1)
    took = time.monotonic() - t0
    assert failed["outcome"] == "failed" and [s["kind"] for s in failed["steps"]] == ["release_job"], failed
    reason = failed["reason"]
    assert "DeadlineExceeded" in reason and "Insufficient cpu" in reason, reason
    assert took < 25, took  # the Job controller ended it, well before the CLI's own deadline (3 s + 30 s)

    # Nothing else applied: the serving Deployment, its config and the applyset parent are as they were.
    assert admin.get(Deployment, "svc-kube", namespace=ns).metadata.generation == generation
    assert {cm.metadata.name for cm in admin.list(ConfigMap, namespace=ns)} == configmaps
    assert admin.get(ConfigMap, "svc-kube-applyset", namespace=ns).metadata.annotations == parent
    [job] = admin.list(Job, namespace=ns, labels=RELEASE_JOB)
    # The deploy ended at the Job's FailureTarget; its pod is deleted, then the Job is Failed (kept until a retry).
    def ended() -> bool:
        conds = {c.type: c.reason for c in admin.get(Job, job.metadata.name, namespace=ns).status.conditions
                 if c.status == "True"}
        return conds.get("Failed") == "DeadlineExceeded" and pods_of(admin, ns, job) == []
    assert wait_for(ended, timeout=30), admin.get(Job, job.metadata.name, namespace=ns).status
    rows = p.json("history", "--env", "kube")
    assert isinstance(rows, list) and rows[0]["outcome"] == "failed" and rows[0]["steps"][0]["name"] == "release_job"

    # The retry of that release, once the cause is fixed, replaces the failed Job (its template cannot
    # change) and runs the command afresh.
    p.write_kube_spec(release=MIGRATE, autoscale=False, greeting="v2")
    p.commit("v3")
    plan = deploy(p, "--release", failed["release"], "--plan")
    assert plan["objects"][0] == {"object": f"Job.batch/{job.metadata.name}", "action": "replace", "changes": []}
    retry = deploy(p, "--release", failed["release"])
    assert retry["outcome"] == "succeeded", retry
    assert retry["steps"][0]["kind"] == "release_job" and not retry["steps"][0].get("reused")
    [again] = admin.list(Job, namespace=ns, labels=RELEASE_JOB)
    assert again.metadata.name == job.metadata.name and again.metadata.uid != job.metadata.uid
    assert {c.type for c in again.status.conditions if c.status == "True"} >= {"Complete"}
