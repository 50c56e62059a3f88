"""``[environments.NAME.kubernetes]``: where and how an environment with ``target = "kubernetes"`` runs.

Every key maps to fields of the objects ``engine/kube/render.py`` writes (docs/kubernetes.md has the table).
Quantities are checked here with Kubernetes' own grammar, so a typo is a key-path error at load, not a 422
from the API server halfway through a deploy.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, model_validator

from shipyard.primitives.spec.base import MAX_LIST, MAX_REPLICAS, MAX_TABLE, SpecModel

# RFC 1123 label (namespaces, object names) and the label-value grammar of pod selectors.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$")
MEMORY = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
# An image reference: [registry/]path[:tag][@sha256:digest]; "{release}" is replaced by the release id.
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@{}-]{0,254}$")


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(f"expected a lowercase DNS label (a-z, 0-9, '-', at most 63), got {value!r}")
    return value


def _regex(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


def _labels(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if not LABEL_KEY.match(k):
            raise ValueError(f"{k!r} is not a label key")
        if not LABEL_VALUE.match(v):
            raise ValueError(f"{v!r} (label {k}) is not a label value")
    return value


def _toggle(value: Any) -> Any:
    # `network_policy = true`: with the defaults; `false`: none (also one set in [defaults]).
    return {} if value is True else None if value is False else value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Cpu = Annotated[str, _regex(CPU, "a CPU quantity like '250m' or '0.5'")]
Memory = Annotated[str, _regex(MEMORY, "a memory quantity like '256Mi' or '1Gi'")]
Labels = Annotated[dict[str, str], AfterValidator(_labels), Field(max_length=MAX_TABLE)]
Replicas = Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)]


class QuantitiesSpec(SpecModel):
    cpu: Cpu | None = None
    memory: Memory | None = None


class ResourcesSpec(SpecModel):
    """Container requests and limits (``requests = { cpu = "250m", memory = "256Mi" }``)."""

    requests: QuantitiesSpec = QuantitiesSpec()
    limits: QuantitiesSpec = QuantitiesSpec()


class AutoscaleSpec(SpecModel):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU utilization of the requests."""

    min: Replicas = 1
    max: Replicas
    cpu_percent: Annotated[StrictInt, Field(ge=1, le=1000)] = 80

    @model_validator(mode="after")
    def _order(self) -> AutoscaleSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class DisruptionSpec(SpecModel):
    """A PodDisruptionBudget: one of ``min_available`` or ``max_unavailable`` (pods)."""

    min_available: Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)] | None = None
    max_unavailable: Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)] | None = None

    @model_validator(mode="after")
    def _one(self) -> DisruptionSpec:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("give exactly one of min_available or max_unavailable")
        return self


class NetworkPolicySpec(SpecModel):
    """Ingress to the app's port only from these peers (none given: pods of its own namespace)."""

    from_namespaces: Annotated[list[DnsLabel], Field(max_length=MAX_LIST)] = []
    from_pods: Labels = {}


class IngressSpec(SpecModel):
    host: Annotated[str, _regex(HOST, "a host name like 'app.example.com'")]
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=1024)] = "/"
    class_name: DnsLabel | None = None
    tls_secret: DnsLabel | None = None


class KubernetesSpec(SpecModel):
    """``[environments.NAME.kubernetes]``."""

    kubeconfig: Annotated[str, Field(min_length=1, max_length=4096)] | None = None  # default: $KUBECONFIG
    context: Annotated[str, Field(min_length=1, max_length=253)] | None = None  # default: the current one
    namespace: DnsLabel = "default"
    image: Annotated[str, _regex(IMAGE, "an image reference like 'registry.local/app:{release}'")] = "{app}:{release}"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # `shipyard image build` without a Dockerfile in the repository: the generated one starts FROM this.
    base_image: Annotated[str, _regex(IMAGE, "an image reference like 'python:3.12-slim'")] = "python:3.12-slim"
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    service_port: Annotated[StrictInt, Field(ge=1, le=65535)] = 80
    # preStop sleep: the pod stays up while endpoints controllers and proxies stop sending it traffic.
    drain_delay: Annotated[StrictInt, Field(ge=0, le=3600)] = 5
    # canary: the Prometheus that Argo Rollouts' analysis queries (default: [metrics] prometheus)
    prometheus: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2048)] | None = None
    resources: ResourcesSpec = ResourcesSpec()
    autoscale: AutoscaleSpec | None = None
    disruption: DisruptionSpec | None = None
    network_policy: Annotated[NetworkPolicySpec | None, BeforeValidator(_toggle)] = None
    ingress: IngressSpec | None = None
    labels: Labels = {}
    service_account: DnsLabel | None = None
