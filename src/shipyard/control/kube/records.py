"""What a Kubernetes environment has run, kept in the cluster itself: the applyset parent names the serving
and previous release; one record ConfigMap per release holds the objects it applied — never a Secret's
values, only the Secret's name, which stays in the cluster while a kept release references it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shipyard.control.kube.cluster import Cluster
from shipyard.engine.kube import applyset
from shipyard.engine.kube.render import SLOT_LABEL, Manifest, k8s_name

RECORD_LABEL = "shipyard.dev/release-record"


@dataclass(frozen=True)
class EnvRecord:
    """The applyset parent as found: its member kinds, serving and previous release."""

    name: str
    kinds: tuple[str, ...]
    current: str | None
    previous: str | None
    slot: str | None = None


@dataclass(frozen=True)
class ReleaseRecord:
    release: str
    image: str
    created_at: float
    manifests: tuple[Manifest, ...]  # the Secret left out (its name is in the Deployment)

    @property
    def slot(self) -> str | None:
        """The blue-green slot its Deployment ran in (None: rolling)."""
        for m in self.manifests:
            if m["kind"] == "Deployment":
                return m["spec"]["selector"]["matchLabels"].get(SLOT_LABEL)  # type: ignore[no-any-return]
        return None

    @property
    def references(self) -> set[applyset.ObjectRef]:
        """The ConfigMap and Secret its pods read: kept while the record is."""
        refs = set()
        for m in self.manifests:
            if m["kind"] not in ("Deployment", "Rollout"):  # a canary's Rollout carries the pod template
                continue
            for c in m["spec"]["template"]["spec"]["containers"]:
                for src in c.get("envFrom", []):
                    if "configMapRef" in src:
                        refs.add(applyset.ObjectRef("ConfigMap", src["configMapRef"]["name"]))
                    if "secretRef" in src:
                        refs.add(applyset.ObjectRef("Secret", src["secretRef"]["name"]))
        return refs | {applyset.ObjectRef.of(m) for m in self.manifests if m["kind"] == "ConfigMap"}


def parent_name(base: str) -> str:
    return f"{base}-applyset"


def record_name(base: str, release: str) -> str:
    return f"{base}-rec-{k8s_name(release, 40)}"


async def read_env(cluster: Cluster, base: str) -> EnvRecord:
    name = parent_name(base)
    obj = await cluster.get("v1", "ConfigMap", name)
    ann = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    kinds = tuple(k for k in (ann.get(applyset.GROUP_KINDS) or "").split(",") if k)
    return EnvRecord(name, kinds, ann.get(applyset.CURRENT), ann.get(applyset.PREVIOUS), ann.get(applyset.SLOT))


def record_manifest(base: str, namespace: str, rec: ReleaseRecord) -> Manifest:
    body = json.dumps([m for m in rec.manifests if m["kind"] != "Secret"], sort_keys=True)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": record_name(base, rec.release), "namespace": namespace,
                         "labels": {RECORD_LABEL: base, "app.kubernetes.io/managed-by": "shipyard"},
                         "annotations": {"shipyard.dev/release": rec.release, "shipyard.dev/image": rec.image,
                                         "shipyard.dev/created-at": f"{rec.created_at:.3f}"}},
            "data": {"manifests.json": body}}


def _parse(obj: dict[str, Any]) -> ReleaseRecord:
    ann = obj["metadata"].get("annotations") or {}
    return ReleaseRecord(release=ann["shipyard.dev/release"], image=ann.get("shipyard.dev/image", ""),
                         created_at=float(ann.get("shipyard.dev/created-at", 0)),
                         manifests=tuple(json.loads((obj.get("data") or {}).get("manifests.json", "[]"))))


async def records(cluster: Cluster, base: str) -> list[ReleaseRecord]:
    """Every release record of the environment, newest first."""
    found = await cluster.objects("v1", "ConfigMap", labels={RECORD_LABEL: base})
    return sorted((_parse(o) for o in found), key=lambda r: r.created_at, reverse=True)


async def record(cluster: Cluster, base: str, release: str) -> ReleaseRecord | None:
    obj = await cluster.get("v1", "ConfigMap", record_name(base, release))
    return _parse(obj) if obj else None
