"""Rollout status of a Deployment, pure — the judgement ``kubectl rollout status`` makes — and the words
for a failed one, from its new pods and their events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RolloutStatus:
    done: bool
    failed: bool
    message: str


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == kind:
            return c  # type: ignore[no-any-return]
    return None


def rollout_status(dep: Mapping[str, Any], at_least: int = 0) -> RolloutStatus:
    """``at_least``: with an autoscaler the Deployment's replicas are its field; it raises them to its
    minimum, and the rollout is done once that many are available."""
    meta, spec, status = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status") or {}
    name = meta.get("name", "?")
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return RolloutStatus(False, False, f"waiting for the controller to see deployment {name}'s new spec")
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return RolloutStatus(False, True, f"deployment {name} exceeded its progress deadline "
                                          f"(ProgressDeadlineExceeded: {progressing.get('message', '')})")
    want = max(int(spec.get("replicas") if spec.get("replicas") is not None else 1), at_least)
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < want:
        return RolloutStatus(False, False, f"{updated} of {want} new replicas updated")
    if total > updated:
        return RolloutStatus(False, False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return RolloutStatus(False, False, f"{available} of {updated} updated replicas available")
    return RolloutStatus(True, False, f"deployment {name} rolled out ({available} available)")


def pod_reasons(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], limit: int = 5) -> list[str]:
    """One line per pod that is not ready: its waiting/terminated reason or unmet condition, and its
    latest warning events."""
    by_pod: dict[str, list[str]] = {}
    for ev in events:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") == "Pod":
            text = f"{ev.get('reason', '')}: {ev.get('message') or ev.get('note') or ''}".strip(": ")
            by_pod.setdefault(str(obj.get("name")), []).append(text)
    lines = []
    for pod in pods:
        name = str(pod.get("metadata", {}).get("name"))
        status = pod.get("status") or {}
        ready = _condition(status, "Ready")
        if ready is not None and ready.get("status") == "True":
            continue
        why = [f"phase {status.get('phase', 'Unknown')}"]
        for cs in status.get("containerStatuses") or []:
            for state in ("waiting", "terminated"):
                s = (cs.get("state") or {}).get(state)
                if s and s.get("reason"):
                    why.append(f"{cs.get('name')} {state}: {s['reason']}" + (f" ({s['message']})" if s.get("message") else ""))
        for kind in ("PodScheduled", "Ready"):
            c = _condition(status, kind)
            if c is not None and c.get("status") != "True":
                why.append(f"{kind}={c.get('status')}" + (f" {c.get('reason')}" if c.get("reason") else ""))
        why += by_pod.get(name, [])[-3:]
        lines.append(f"pod {name}: " + "; ".join(why))
        if len(lines) >= limit:
            break
    return lines
