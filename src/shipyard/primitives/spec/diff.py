"""Which config keys changed between two snapshots (``deploy --plan``: "config keys changed")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables → ``{"a.b.c": leaf}``; lists are leaves (compared whole). An empty table is a leaf."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def diff_config(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys added, removed or changed between ``old`` and ``new``, sorted."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k, _MISSING) != b.get(k, _MISSING))
