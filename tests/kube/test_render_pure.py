"""Pure parts of the Kubernetes target: spec validation, rendering, applyset ids, rollout status, plan diffs."""

from __future__ import annotations

import base64
import hashlib
import tomllib
from pathlib import Path

import pytest

from shipyard.engine.kube.applyset import ObjectRef, applyset_id, group_kind, prune_list
from shipyard.engine.kube.diff import HIDDEN, diff_object, mask_secret
from shipyard.engine.kube.render import ReleaseInput, render
from shipyard.engine.kube.status import pod_reasons, rollout_status
from shipyard.errors import ConfigError
from shipyard.primitives.spec import parse_spec

BASE = """
[app]
name = "Shop.Web"
run = "gunicorn app:app"
[app.health]
path = "/health"
[environments.prod]
port = 8080
target = "kubernetes"
"""


def spec(extra: str = "") -> object:
    return parse_spec(tomllib.loads(BASE + extra), Path("/tmp/shipyard.toml"))


def test_bad_kubernetes_keys_name_their_key_path() -> None:
    cases = {
        '[environments.prod.kubernetes]\nnamespace = "Bad_NS"\n': "environments.prod.kubernetes.namespace",
        '[environments.prod.kubernetes]\nresources = { requests = { cpu = "lots" } }\n':
            "environments.prod.kubernetes.resources.requests.cpu",
        '[environments.prod.kubernetes]\nautoscale = { min = 5, max = 2 }\n': "environments.prod.kubernetes.autoscale",
        '[environments.prod.kubernetes]\ndisruption = { min_available = 1, max_unavailable = 1 }\n':
            "environments.prod.kubernetes.disruption",
        '[environments.prod.kubernetes]\nnamespce = "x"\n': "namespace",  # did-you-mean
    }
    for text, path in cases.items():
        with pytest.raises(ConfigError) as err:
            spec(text)
        assert path in str(err.value), (text, str(err.value))
    with pytest.raises(ConfigError) as err:
        parse_spec(tomllib.loads(BASE.replace('target = "kubernetes"', 'target = "nomad"')), Path("/tmp/shipyard.toml"))
    assert "environments.prod.target" in str(err.value)


def _inp(extra: str = "", config: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> ReleaseInput:
    s = spec(extra)
    return ReleaseInput(app=s.app, env=s.env("prod"), release="r20260101000000-abcdef1",  # type: ignore[attr-defined]
                        config=config or {"A": "1"}, secrets=secrets or {"TOKEN": "t0ken"})


def test_names_are_content_hashed_and_labels_recommended() -> None:
    a, b = _inp(config={"A": "1"}), _inp(config={"A": "2"})
    assert a.configmap_name != b.configmap_name and a.secret_name == b.secret_name
    assert a.configmap_name.startswith("shop-web-prod-config-")
    objs = {m["kind"]: m for m in render(a)}
    assert set(objs) == {"ConfigMap", "Secret", "Deployment", "Service"}
    labels = objs["Deployment"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "shop-web" and labels["app.kubernetes.io/instance"] == "shop-web-prod"
    assert base64.b64decode(objs["Secret"]["data"]["TOKEN"]) == b"t0ken"
    assert "replicas" in objs["Deployment"]["spec"]
    hpa = {m["kind"]: m for m in render(_inp('[environments.prod.kubernetes]\nautoscale = { max = 3 }\n'))}
    assert "replicas" not in hpa["Deployment"]["spec"] and hpa["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 3


def test_applyset_id_follows_the_kep() -> None:
    digest = hashlib.sha256(b"parent.ns.ConfigMap.").digest()
    expected = "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"
    assert applyset_id("parent", "ns") == expected
    assert group_kind({"apiVersion": "apps/v1", "kind": "Deployment"}) == "Deployment.apps"
    assert group_kind({"apiVersion": "v1", "kind": "Service"}) == "Service"
    live = [ObjectRef("Service", "a"), ObjectRef("ConfigMap", "old"), ObjectRef("ConfigMap", "kept")]
    assert prune_list(live, [ObjectRef("Service", "a"), ObjectRef("ConfigMap", "kept")]) == [ObjectRef("ConfigMap", "old")]


def _dep(gen: int, observed: int, **status: object) -> dict[str, object]:
    return {"metadata": {"name": "d", "generation": gen}, "spec": {"replicas": 2},
            "status": {"observedGeneration": observed, **status}}


def test_rollout_status_judges_like_kubectl() -> None:
    assert not rollout_status(_dep(2, 1)).done
    assert rollout_status(_dep(2, 2, updatedReplicas=1, replicas=2)).message == "1 of 2 new replicas updated"
    assert "old replicas" in rollout_status(_dep(2, 2, updatedReplicas=2, replicas=3)).message
    assert not rollout_status(_dep(2, 2, updatedReplicas=2, replicas=2, availableReplicas=1)).done
    assert rollout_status(_dep(2, 2, updatedReplicas=2, replicas=2, availableReplicas=2)).done
    assert not rollout_status(_dep(2, 2, updatedReplicas=2, replicas=2, availableReplicas=2), at_least=3).done
    failed = rollout_status(_dep(2, 2, conditions=[{"type": "Progressing", "status": "False",
                                                    "reason": "ProgressDeadlineExceeded", "message": "slow"}]))
    assert failed.failed and "ProgressDeadlineExceeded" in failed.message
    pods = [{"metadata": {"name": "p1"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}},
            {"metadata": {"name": "p2"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}]
    events = [{"involvedObject": {"kind": "Pod", "name": "p1"}, "reason": "FailedScheduling",
               "message": "0/1 nodes are available: 1 Insufficient cpu."}]
    (line,) = pod_reasons(pods, events)
    assert "PodScheduled=False Unschedulable" in line and "Insufficient cpu" in line


def test_diff_hides_secret_values() -> None:
    live = {"kind": "Secret", "metadata": {"name": "s", "resourceVersion": "1"}, "data": {"A": "eA=="}}
    new = {"kind": "Secret", "metadata": {"name": "s", "resourceVersion": "2"}, "data": {"A": "eQ=="}}
    (change,) = diff_object(live, new)
    assert change.path == "data.A" and change.before == change.after == HIDDEN
    assert mask_secret(new)["data"] == {"A": HIDDEN}
