"""What an apply would change, pure: the live object against the server's dry-run answer, field by field.

Server-managed fields (status, managedFields, resourceVersion, uid, timestamps, generation) are left out;
a Secret's values never appear: a changed key is reported as changed, its values as ``(hidden)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
HIDDEN = "(hidden)"


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


def _clean(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "deployment.kubernetes.io/revision"}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _walk(path: str, a: Any, b: Any, out: list[Change], secret: bool) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            _walk(f"{path}.{key}" if path else str(key), a.get(key), b.get(key), out, secret)
        return
    if a == b:
        return
    if secret and (path.startswith("data.") or path.startswith("stringData.") or path in ("data", "stringData")):
        a, b = (HIDDEN if a is not None else None), (HIDDEN if b is not None else None)
    out.append(Change(path, a, b))


def diff_object(live: Mapping[str, Any] | None, applied: Mapping[str, Any]) -> list[Change]:
    """Changes from ``live`` (None: the object does not exist) to ``applied``."""
    out: list[Change] = []
    _walk("", _clean(live), _clean(applied), out, secret=applied.get("kind") == "Secret")
    return out


def mask_secret(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret with every value replaced by ``(hidden)`` (for export and plans); other kinds unchanged."""
    if manifest.get("kind") != "Secret":
        return dict(manifest)
    out = dict(manifest)
    for key in ("data", "stringData"):
        if key in out:
            out[key] = dict.fromkeys(out[key], HIDDEN)
    return out
