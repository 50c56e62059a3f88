"""ApplySets (KEP-3659), pure: which objects an environment owns, so that one dropped from the spec is pruned.

The parent is a ConfigMap ``<base>-applyset`` in the environment's namespace. Its id label is the KEP's
``applyset-<base64url(sha256("<name>.<namespace>.<Kind>.<group>"))>-v1``; every member carries
``applyset.kubernetes.io/part-of=<id>``; the parent lists the member kinds in
``applyset.kubernetes.io/contains-group-kinds`` so a pruner (ours, or ``kubectl apply --prune --applyset``)
knows which kinds to list. The parent also records the serving and previous release.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF = "applyset.kubernetes.io/part-of"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
CURRENT = "shipyard.dev/current-release"
PREVIOUS = "shipyard.dev/previous-release"
SLOT = "shipyard.dev/slot"  # blue-green: the slot the serving release runs in
TOOLING_VALUE = "shipyard/v1"


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def group_kind(manifest: Mapping[str, Any]) -> str:
    """``Deployment.apps``; a core kind is its bare name (``Service``)."""
    api = str(manifest["apiVersion"])
    group = api.split("/")[0] if "/" in api else ""
    return f"{manifest['kind']}.{group}" if group else str(manifest["kind"])


@dataclass(frozen=True)
class ObjectRef:
    group_kind: str
    name: str

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> ObjectRef:
        return cls(group_kind(manifest), str(manifest["metadata"]["name"]))

    def __str__(self) -> str:
        return f"{self.group_kind}/{self.name}"


def label_members(manifests: Iterable[dict[str, Any]], set_id: str) -> list[dict[str, Any]]:
    out = []
    for m in manifests:
        meta = dict(m["metadata"])
        meta["labels"] = {**meta.get("labels", {}), PART_OF: set_id}
        out.append({**m, "metadata": meta})
    return out


def parent(name: str, namespace: str, members: Iterable[Mapping[str, Any]], current: str,
           previous: str | None, known_kinds: Iterable[str] = (), slot: str | None = None) -> dict[str, Any]:
    """The parent ConfigMap; ``known_kinds`` (what it listed before) stay listed so their leftovers are found."""
    kinds = sorted({group_kind(m) for m in members} | set(known_kinds))
    annotations = {TOOLING: TOOLING_VALUE, GROUP_KINDS: ",".join(kinds), CURRENT: current}
    if previous:
        annotations[PREVIOUS] = previous
    if slot:
        annotations[SLOT] = slot
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {ID_LABEL: applyset_id(name, namespace)},
                         "annotations": annotations}}


def prune_list(live: Iterable[ObjectRef], keep: Iterable[ObjectRef]) -> list[ObjectRef]:
    """Members found in the cluster that the new set (with what kept releases still reference) lacks."""
    wanted = set(keep)
    return sorted((ref for ref in set(live) if ref not in wanted), key=str)
