"""`shipyard deploy` / `rollback` / `export kubernetes` on an environment with target = "kubernetes", against a
real API server, controller manager, scheduler and kwok node (tests/kube/harness.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from harness import KubeCluster
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType

from conftest import KubeProject

SECRET = "s3cr3t-Value-9f81"


def deploy(p: KubeProject, *args: str, code: int = 0) -> dict[str, Any]:
    doc = p.json("deploy", "--env", "kube", *args, code=code)
    assert isinstance(doc, dict)
    return doc


def env_configmap(admin: Client, ns: str, dep: Any) -> str:
    refs = dep.spec.template.spec.containers[0].envFrom
    return next(r.configMapRef.name for r in refs if r.configMapRef)


def test_rolling_deploy_config_change_rollback_and_prune(kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.ok("secrets", "set", "--env", "kube", f"API_TOKEN={SECRET}")
    first = deploy(p)
    assert first["outcome"] == "succeeded", first
    assert [s["kind"] for s in first["steps"]] == ["apply", "wait_rollout", "record", "prune"]
    rel1 = first["release"]

    dep = admin.get(Deployment, "svc-kube", namespace=ns)
    c = dep.spec.template.spec.containers[0]
    assert dep.status.availableReplicas == 2 and dep.status.updatedReplicas == 2
    assert dep.spec.strategy.rollingUpdate.maxSurge == 1 and dep.spec.strategy.rollingUpdate.maxUnavailable == 0
    assert dep.spec.progressDeadlineSeconds == 60 and dep.spec.replicas is not None  # HPA took it? see below
    assert c.image == f"svc:{rel1}" and c.ports[0].containerPort == 8000
    assert c.livenessProbe.httpGet.path == "/health" and c.livenessProbe.periodSeconds == 2
    assert c.readinessProbe.httpGet.path == "/ready"
    assert c.startupProbe.failureThreshold == 5  # start_period 10 s / interval 2 s
    assert dep.spec.template.spec.terminationGracePeriodSeconds == 23  # stop grace 20 s + preStop 3 s
    assert c.lifecycle.preStop.sleep.seconds == 3
    assert c.resources.requests == {"cpu": "100m", "memory": "64Mi"} and c.resources.limits == {"memory": "128Mi"}
    labels = dep.metadata.labels
    assert labels["app.kubernetes.io/managed-by"] == "shipyard" and labels["shipyard.dev/release"] == rel1
    assert labels["applyset.kubernetes.io/part-of"].startswith("applyset-")
    assert {m.manager for m in dep.metadata.managedFields} >= {"shipyard"}

    cm1 = env_configmap(admin, ns, dep)
    assert admin.get(ConfigMap, cm1, namespace=ns).data == {"GREETING": "hello"}
    secret_name = next(r.secretRef.name for r in c.envFrom if r.secretRef)
    assert base64.b64decode(admin.get(Secret, secret_name, namespace=ns).data["API_TOKEN"]).decode() == SECRET
    svc = admin.get(Service, "svc-kube", namespace=ns)
    assert svc.spec.selector == {"app.kubernetes.io/name": "svc", "app.kubernetes.io/instance": "svc-kube"}
    assert svc.spec.ports[0].targetPort == "http"
    hpa = admin.get(HorizontalPodAutoscaler, "svc-kube", namespace=ns)
    assert (hpa.spec.minReplicas, hpa.spec.maxReplicas) == (2, 4)
    assert hpa.spec.metrics[0].resource.target.averageUtilization == 70
    assert admin.get(PodDisruptionBudget, "svc-kube", namespace=ns).spec.maxUnavailable == 1
    netpol = admin.get(NetworkPolicy, "svc-kube", namespace=ns)
    assert netpol.spec.ingress[0].from_[0].namespaceSelector.matchLabels == {"kubernetes.io/metadata.name": "ingress"}

    # A config change is a new hashed ConfigMap and a rollout; the old one stays for a rollback.
    p.write_kube_spec(greeting="bonjour")
    p.commit("v2")
    second = deploy(p)
    assert second["outcome"] == "succeeded" and second["previous_release"] == rel1
    dep2 = admin.get(Deployment, "svc-kube", namespace=ns)
    cm2 = env_configmap(admin, ns, dep2)
    assert cm2 != cm1 and admin.get(ConfigMap, cm2, namespace=ns).data == {"GREETING": "bonjour"}
    assert admin.get(ConfigMap, cm1, namespace=ns) is not None

    generation = dep2.metadata.generation  # spec changes only (status updates move resourceVersion)
    plan = p.json("rollback", "--env", "kube", "--plan")
    assert isinstance(plan, dict) and plan["release"] == rel1
    changed = {c["path"] for o in plan["objects"] if o["object"] == "Deployment.apps/svc-kube" for c in o["changes"]}
    assert any(path.startswith("spec.template") for path in changed), changed
    assert admin.get(Deployment, "svc-kube", namespace=ns).metadata.generation == generation  # a dry run
    back = p.json("rollback", "--env", "kube")
    assert isinstance(back, dict) and back["outcome"] == "succeeded" and back["release"] == rel1
    dep3 = admin.get(Deployment, "svc-kube", namespace=ns)
    assert env_configmap(admin, ns, dep3) == cm1
    assert dep3.spec.template.spec.containers[0].image == f"svc:{rel1}"
    assert dep3.status.availableReplicas == 2

    # The autoscaler dropped from the spec is pruned through the applyset.
    p.write_kube_spec(greeting="bonjour", autoscale=False)
    p.commit("v3")
    third = deploy(p)
    assert third["outcome"] == "succeeded"
    assert "HorizontalPodAutoscaler.autoscaling/svc-kube" in third["pruned"]
    assert list(admin.list(HorizontalPodAutoscaler, namespace=ns)) == []
    assert admin.get(Deployment, "svc-kube", namespace=ns).spec.replicas == 2

    # The secret's value is nowhere but the Secret: not in output, release records, or the project's files.
    records = [cm.data for cm in admin.list(ConfigMap, namespace=ns, labels={"shipyard.dev/release-record": "svc-kube"})]
    assert len(records) == 3 and SECRET not in json.dumps(records)
    for doc in (first, second, back, third):
        assert SECRET not in json.dumps(doc)
    for f in (p.dir / ".shipyard").rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_pods_never_ready_fail_with_reason_and_old_replicaset_keeps_serving(kproject: KubeProject,
                                                                             admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    assert deploy(p)["outcome"] == "succeeded"
    old_rs = [rs for rs in admin.list(ReplicaSet, namespace=ns) if rs.status.availableReplicas]
    assert len(old_rs) == 1
    # No node can fit 500 CPUs: the new pods stay Pending and the rollout misses its 5 s deadline.
    p.write_kube_spec(cpu="500", deploy_timeout="5s")
    p.commit("v2")
    failed = deploy(p, code=1)
    assert failed["outcome"] == "failed"
    assert "ProgressDeadlineExceeded" in failed["reason"] and "Insufficient cpu" in failed["reason"], failed
    assert [s["kind"] for s in failed["steps"]][-1] == "restore"
    dep = admin.get(Deployment, "svc-kube", namespace=ns)
    assert dep.spec.template.spec.containers[0].resources.requests["cpu"] == "100m"  # applied back
    rs = admin.get(ReplicaSet, old_rs[0].metadata.name, namespace=ns)
    assert rs.status.availableReplicas == 2


def test_plan_is_a_server_side_dry_run_that_changes_nothing(kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.ok("secrets", "set", "--env", "kube", f"API_TOKEN={SECRET}")
    fresh = p.json("deploy", "--env", "kube", "--plan")
    assert isinstance(fresh, dict)
    assert {o["action"] for o in fresh["objects"]} == {"create"}
    assert list(admin.list(Deployment, namespace=ns)) == []  # the dry run created nothing
    assert deploy(p)["outcome"] == "succeeded"
    before = admin.get(Deployment, "svc-kube", namespace=ns).metadata.generation
    p.ok("secrets", "set", "--env", "kube", "API_TOKEN=another-value-77")
    p.write_kube_spec(greeting="hola")
    p.commit("v2")
    plan = p.json("deploy", "--env", "kube", "--plan")
    assert isinstance(plan, dict)
    by = {o["object"]: o for o in plan["objects"]}
    dep_changes = {c["path"] for c in by["Deployment.apps/svc-kube"]["changes"]}
    assert any(c.startswith("spec.template.spec.containers") for c in dep_changes), dep_changes
    new_cm = next(o for o in plan["objects"] if o["object"].startswith("ConfigMap/") and o["action"] == "create")
    assert new_cm["object"].split("/")[1] not in {cm.metadata.name for cm in admin.list(ConfigMap, namespace=ns)}
    assert [o for o in plan["objects"] if o["object"].startswith("Secret/")][0]["action"] == "create"
    assert admin.get(Deployment, "svc-kube", namespace=ns).metadata.generation == before
    proc = p.ok("deploy", "--env", "kube", "--plan")
    text = proc.stdout + proc.stderr
    assert "dry run" in text and "update    Deployment.apps/svc-kube" in text
    for out in (json.dumps(plan), text):
        assert SECRET not in out and "another-value-77" not in out


def test_export_masks_secrets_and_every_object_validates_server_side(kproject: KubeProject, tmp_path: Path) -> None:
    p = kproject
    p.ok("secrets", "set", "--env", "kube", f"API_TOKEN={SECRET}")
    p.write_kube_spec(release='["python3 manage.py migrate"]',
                      extra='ingress = { host = "svc.example.com", class_name = "nginx", tls_secret = "svc-tls" }\n')
    p.commit("v2")
    out = tmp_path / "manifests"
    p.ok("export", "kubernetes", "--env", "kube", "--out", str(out))
    kinds = sorted(f.name.split("-")[0] for f in out.iterdir())
    assert kinds == ["configmap", "deployment", "horizontalpodautoscaler", "ingress", "job", "networkpolicy",
                     "poddisruptionbudget", "secret", "service"]
    text = "".join(f.read_text() for f in out.iterdir())
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text and "(hidden)" in text
    # The plan dry-runs every object the deploy applies: the API server validated each (422 → exit 2).
    plan = p.json("deploy", "--env", "kube", "--plan")
    assert isinstance(plan, dict) and len(plan["objects"]) == 9
    assert plan["steps"][0]["kind"] == "release_job"


def test_release_command_job_runs_before_the_rollout(kproject: KubeProject, admin: Client) -> None:
    p = kproject
    p.write_kube_spec(release='["python3 manage.py migrate"]', autoscale=False)
    p.commit("v2")
    doc = deploy(p)
    assert doc["outcome"] == "succeeded", doc
    assert [s["kind"] for s in doc["steps"]][:2] == ["release_job", "apply"]


def test_field_owned_by_another_manager_is_a_conflict_naming_it(kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(autoscale=False)
    p.commit("v2")
    assert deploy(p)["outcome"] == "succeeded"
    admin.patch(Deployment, "svc-kube", {"apiVersion": "apps/v1", "kind": "Deployment",
                                         "metadata": {"name": "svc-kube", "namespace": ns}, "spec": {"replicas": 5}},
                namespace=ns, patch_type=PatchType.APPLY, field_manager="kubectl-scale", force=True)
    proc = p.cli("deploy", "--env", "kube")
    assert proc.returncode == 3, proc.stderr
    assert "kubectl-scale" in proc.stderr and ".spec.replicas" in proc.stderr


def test_cluster_problems_are_clear_errors(kproject: KubeProject, kube: KubeCluster, tmp_path: Path) -> None:
    p = kproject
    p.write_kube_spec(extra='context = "nowhere"\n')
    proc = p.cli("deploy", "--env", "kube")
    assert proc.returncode == 2 and "unknown context 'nowhere'" in proc.stderr and "test" in proc.stderr
    assert "Traceback" not in proc.stderr

    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(p.kubeconfig.read_text().replace(kube.server, "https://127.0.0.1:9"))
    p.kubeconfig = dead
    p.write_kube_spec()
    proc = p.cli("deploy", "--env", "kube")
    assert proc.returncode == 1 and "cannot reach the Kubernetes API server at https://127.0.0.1:9" in proc.stderr

    p.kubeconfig = kube.kubeconfig("developer", tmp_path / "dev-kubeconfig")
    p.write_kube_spec()
    proc = p.cli("deploy", "--env", "kube")
    assert proc.returncode == 4 and "not permitted" in proc.stderr and "Traceback" not in proc.stderr


def test_blue_green_switches_the_service_once_the_new_slot_is_available(kproject: KubeProject,
                                                                        admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(strategy="blue-green", autoscale=False)
    p.commit("v2")
    first = deploy(p)
    assert first["outcome"] == "succeeded", first
    assert admin.get(Service, "svc-kube", namespace=ns).spec.selector["shipyard.dev/slot"] == "blue"
    p.write_kube_spec(strategy="blue-green", autoscale=False, greeting="hej")
    p.commit("v3")
    second = deploy(p)
    kinds = [s["kind"] for s in second["steps"]]
    assert kinds.index("wait_rollout") < kinds.index("switch") < kinds.index("prune"), kinds
    assert admin.get(Service, "svc-kube", namespace=ns).spec.selector["shipyard.dev/slot"] == "green"
    green = admin.get(Deployment, "svc-kube-green", namespace=ns)
    assert green.status.availableReplicas == 2
    assert "Deployment.apps/svc-kube-blue" in second["pruned"]
    back = p.json("rollback", "--env", "kube")
    assert isinstance(back, dict) and back["outcome"] == "succeeded", back
    assert admin.get(Service, "svc-kube", namespace=ns).spec.selector["shipyard.dev/slot"] == "blue"
    assert admin.get(Deployment, "svc-kube-blue", namespace=ns).status.availableReplicas == 2
