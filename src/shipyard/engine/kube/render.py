"""shipyard.toml → Kubernetes objects, pure: one release of one environment as plain manifests.

The objects, in apply order: ConfigMap and Secret (content-hashed names, so a change of config or
secrets is a new object and a new pod template — a rollout — and the previous release's pair stays for a
rollback), Deployment, Service, then the optional HorizontalPodAutoscaler, PodDisruptionBudget,
NetworkPolicy and Ingress. The release command is a Job rendered apart (``release_job``): it must succeed
before the rest is applied. docs/kubernetes.md maps every key to the fields written here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.primitives.spec import AppSpec, EnvSpec, ProbeSpec

Manifest = dict[str, Any]

MANAGED_BY = "shipyard"
RELEASE_LABEL = "shipyard.dev/release"
SLOT_LABEL = "shipyard.dev/slot"  # blue-green: which of the two Deployments the Service selects
ENV_LABEL = "shipyard.dev/env"
INSTANCE_LABEL = "app.kubernetes.io/instance"  # in every selector (selector_labels)
JOB_COMPONENT = "release-job"  # app.kubernetes.io/component of the release command's Job
CONTAINER = "app"


def k8s_name(text: str, limit: int = 40) -> str:
    """A DNS-label form of ``text`` (lowercase, '-' for anything else), at most ``limit`` characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return name or "app"


def content_hash(data: Mapping[str, str]) -> str:
    """Ten hex digits of SHA-256 over the sorted items: the suffix of a ConfigMap's or Secret's name."""
    blob = json.dumps(sorted(data.items()), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


@dataclass(frozen=True)
class ReleaseInput:
    """What one release of one environment is made of; the secret values only live in memory."""

    app: AppSpec
    env: EnvSpec
    release: str
    config: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # set once pushed (with its digest); else the [kubernetes] image pattern
    slot: str | None = None  # blue-green: "blue" | "green"; None for rolling
    # The secret store's version: the Secret's name is hashed over it and the names, never over the values
    # (a short unsalted hash of a weak value would be a guessable fingerprint of it).
    secrets_version: int | None = None

    @property
    def base(self) -> str:
        return k8s_name(f"{self.app.name}-{self.env.name}")

    @property
    def deployment_name(self) -> str:
        return f"{self.base}-{self.slot}" if self.slot else self.base

    @property
    def image_ref(self) -> str:
        if self.image:
            return self.image
        return self.env.kube.image.replace("{app}", k8s_name(self.app.name, 63)).replace("{release}", self.release)

    @property
    def configmap_name(self) -> str:
        return f"{self.base}-config-{content_hash(self.config)}"

    @property
    def secret_name(self) -> str:
        if self.secrets_version is None:
            return f"{self.base}-secrets-{content_hash(self.secrets)}"
        return f"{self.base}-secrets-{content_hash(dict.fromkeys(self.secrets, str(self.secrets_version)))}"


def selector_labels(inp: ReleaseInput) -> dict[str, str]:
    # Stable across releases: a Deployment's selector is immutable.
    return {"app.kubernetes.io/name": k8s_name(inp.app.name, 63), INSTANCE_LABEL: inp.base}


def pod_selector(inp: ReleaseInput) -> dict[str, str]:
    """The Deployment's and Service's selector: with blue-green, one slot's pods."""
    return selector_labels(inp) | ({SLOT_LABEL: inp.slot} if inp.slot else {})


def common_labels(inp: ReleaseInput) -> dict[str, str]:
    return {**selector_labels(inp), "app.kubernetes.io/version": inp.release[:63],
            "app.kubernetes.io/component": "web", "app.kubernetes.io/part-of": k8s_name(inp.app.name, 63),
            "app.kubernetes.io/managed-by": MANAGED_BY, RELEASE_LABEL: inp.release[:63], ENV_LABEL: inp.env.name}


def _meta(inp: ReleaseInput, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": inp.env.kube.namespace, "labels": common_labels(inp)}


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _probe(p: ProbeSpec) -> dict[str, Any]:
    return {"httpGet": {"path": p.path, "port": "http"}, "periodSeconds": _seconds(p.interval),
            "timeoutSeconds": _seconds(p.timeout), "failureThreshold": p.retries}


def _startup_probe(p: ProbeSpec) -> dict[str, Any] | None:
    # start_period: the liveness probe only starts once the startup probe passed, within start_period.
    if p.start_period <= 0:
        return None
    period = _seconds(p.interval)
    return {**_probe(p), "failureThreshold": max(1, math.ceil(p.start_period / period))}


def _resources(inp: ReleaseInput) -> dict[str, Any]:
    res = inp.env.kube.resources
    out: dict[str, Any] = {}
    for key, q in (("requests", res.requests), ("limits", res.limits)):
        values = {k: v for k, v in (("cpu", q.cpu), ("memory", q.memory)) if v is not None}
        if values:
            out[key] = values
    return out


def _container(inp: ReleaseInput) -> dict[str, Any]:
    kube, app = inp.env.kube, inp.app
    c: dict[str, Any] = {
        "name": CONTAINER, "image": inp.image_ref, "imagePullPolicy": kube.image_pull_policy,
        "command": ["/bin/sh", "-c", app.run],
        "ports": [{"name": "http", "containerPort": inp.env.port, "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": str(inp.env.port)}, {"name": "SHIPYARD_ENV", "value": inp.env.name},
                {"name": "SHIPYARD_RELEASE", "value": inp.release}],
        "envFrom": [{"configMapRef": {"name": inp.configmap_name}}, {"secretRef": {"name": inp.secret_name}}],
        "livenessProbe": _probe(app.health),
        "readinessProbe": _probe(app.ready or app.health),
    }
    startup = _startup_probe(app.health)
    if startup:
        c["startupProbe"] = startup
    if kube.drain_delay:
        c["lifecycle"] = {"preStop": {"sleep": {"seconds": kube.drain_delay}}}
    resources = _resources(inp)
    if resources:
        c["resources"] = resources
    return c


def deployment(inp: ReleaseInput) -> Manifest:
    env, kube = inp.env, inp.env.kube
    pod_spec: dict[str, Any] = {
        # The stop grace, plus the preStop sleep that runs before the signal.
        "terminationGracePeriodSeconds": _seconds(inp.app.stop.grace) + kube.drain_delay,
        "containers": [_container(inp)],
    }
    if kube.service_account:
        pod_spec["serviceAccountName"] = kube.service_account
    spec: dict[str, Any] = {
        "selector": {"matchLabels": pod_selector(inp)},
        "revisionHistoryLimit": env.keep_releases,
        "progressDeadlineSeconds": _seconds(env.deploy_timeout),
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": env.max_surge, "maxUnavailable": env.max_unavailable}},
        "template": {"metadata": {"labels": {**common_labels(inp), **pod_selector(inp), **kube.labels},
                                  "annotations": {RELEASE_LABEL: inp.release}},
                     "spec": pod_spec},
    }
    if kube.autoscale is None:  # with an HPA the replica count is the autoscaler's field, not ours
        spec["replicas"] = env.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(inp, inp.deployment_name), "spec": spec}


def service(inp: ReleaseInput) -> Manifest:
    kube = inp.env.kube
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(inp, inp.base),
            "spec": {"type": kube.service_type, "selector": pod_selector(inp),
                     "ports": [{"name": "http", "port": kube.service_port, "targetPort": "http", "protocol": "TCP"}]}}


def configmap(inp: ReleaseInput) -> Manifest:
    # No `data` key when empty: an immutable object applied with {} over its stored null is refused.
    out = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(inp, inp.configmap_name), "immutable": True}
    return out | ({"data": dict(sorted(inp.config.items()))} if inp.config else {})


def secret(inp: ReleaseInput) -> Manifest:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(inp.secrets.items())}
    out = {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(inp, inp.secret_name), "type": "Opaque",
           "immutable": True}
    return out | ({"data": data} if data else {})


def autoscaler(inp: ReleaseInput) -> Manifest | None:
    a = inp.env.kube.autoscale
    if a is None:
        return None
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(inp, inp.base),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": inp.deployment_name},
                     "minReplicas": a.min, "maxReplicas": a.max,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": a.cpu_percent}}}]}}


def disruption_budget(inp: ReleaseInput) -> Manifest | None:
    d = inp.env.kube.disruption
    if d is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": selector_labels(inp)}}
    if d.min_available is not None:
        spec["minAvailable"] = d.min_available
    else:
        spec["maxUnavailable"] = d.max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(inp, inp.base), "spec": spec}


def network_policy(inp: ReleaseInput) -> Manifest | None:
    n = inp.env.kube.network_policy
    if n is None:
        return None
    peers: list[dict[str, Any]] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                                   for ns in n.from_namespaces]
    if n.from_pods:
        peers.append({"podSelector": {"matchLabels": dict(n.from_pods)}})
    if not peers:
        peers = [{"podSelector": {}}]  # its own namespace's pods
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(inp, inp.base),
            "spec": {"podSelector": {"matchLabels": selector_labels(inp)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": inp.env.port}]}]}}


def ingress(inp: ReleaseInput) -> Manifest | None:
    i = inp.env.kube.ingress
    if i is None:
        return None
    spec: dict[str, Any] = {"rules": [{"host": i.host, "http": {"paths": [{
        "path": i.path, "pathType": "Prefix",
        "backend": {"service": {"name": inp.base, "port": {"name": "http"}}}}]}}]}
    if i.class_name:
        spec["ingressClassName"] = i.class_name
    if i.tls_secret:
        spec["tls"] = [{"hosts": [i.host], "secretName": i.tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(inp, inp.base), "spec": spec}


def render(inp: ReleaseInput) -> list[Manifest]:
    """Every object of the release, in apply order (the release Job apart)."""
    optional = (autoscaler(inp), disruption_budget(inp), network_policy(inp), ingress(inp))
    return [configmap(inp), secret(inp), deployment(inp), service(inp), *(m for m in optional if m is not None)]


def release_job(inp: ReleaseInput, commands: list[str], timeout: float) -> Manifest | None:
    """The release command (migrations) as a Job of the new image; None when there is none."""
    if not commands:
        return None
    container = _container(inp)
    job_container = {k: container[k] for k in ("name", "image", "imagePullPolicy", "env", "envFrom")}
    job_container["command"] = ["/bin/sh", "-c", " && ".join(commands)]
    if "resources" in container:
        job_container["resources"] = container["resources"]
    labels = common_labels(inp) | {"app.kubernetes.io/component": JOB_COMPONENT}
    name = f"{inp.base[:30]}-release-{k8s_name(inp.release, 30)}"
    # activeDeadlineSeconds counts from the Job's start, so it bounds a pod that never schedules or pulls too.
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": inp.env.kube.namespace, "labels": labels},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": _seconds(timeout),
                     "template": {"metadata": {"labels": job_pod_labels(inp, labels)},
                                  "spec": {"restartPolicy": "Never", "containers": [job_container]}}}}


def job_pod_labels(inp: ReleaseInput, labels: Mapping[str, str]) -> dict[str, str]:
    """A Job's pod labels: ``labels`` and the spec's own, without the instance label. The Deployment's,
    Service's, PodDisruptionBudget's and NetworkPolicy's selectors all require it, so a one-off pod is never
    an endpoint, never in the autoscaler's average and never counted (or blocked) by the budget."""
    return {k: v for k, v in {**labels, **inp.env.kube.labels}.items() if k != INSTANCE_LABEL}
