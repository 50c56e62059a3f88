"""Which config keys changed between two snapshots (``deploy --plan``: "config changed").

A table that appears or disappears whole is one entry, ``environment.verify (added)``, not one per
leaf: adding ``[environments.staging.verify]`` brings every default of the verify settings with it, and
listing thirty keys hides the one change made. Inside a table present on both sides the changed leaves
are listed; lists are leaves (compared whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()
ADDED = " (added)"
REMOVED = " (removed)"


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


def _table(value: object) -> bool:
    return isinstance(value, Mapping)


def _absent(value: object) -> bool:
    # A section switched off dumps as null: the same as not there.
    return value is _MISSING or value is None


def _walk(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    for key in old.keys() | new.keys():
        path = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if _table(a) and _table(b):
            _walk(a, b, path, out)
        elif _table(b) and b and _absent(a):
            out.append(path + ADDED)
        elif _table(a) and a and _absent(b):
            out.append(path + REMOVED)
        elif a != b:
            out.append(path)


def diff_config(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys changed between ``old`` and ``new``, sorted; a whole table added or removed is one
    entry with `` (added)`` / `` (removed)``."""
    out: list[str] = []
    _walk(old, new, "", out)
    return sorted(out)
