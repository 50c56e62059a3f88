"""shipyard.toml: models, loading and validation. Secrets, env resolution and masking live in submodules
(``spec.secrets``, ``spec.envvars``, ``spec.masking``) so that importing the spec stays cheap.

The names below load on first use (PEP 562): a process that needs one submodule — the router reads only
``spec.router`` — does not build every model of shipyard.toml (~3 MB of the router's RSS)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.primitives.spec.durations import format_duration, parse_duration, parse_percent
    from shipyard.primitives.spec.loading import SPEC_FILES, find_spec_file, load_spec, parse_spec
    from shipyard.primitives.spec.models import AppSpec, EnvSettings, EnvSpec, ProbeSpec, Spec
    from shipyard.primitives.spec.processes import StopSpec

_WHERE = {
    "format_duration": "durations", "parse_duration": "durations", "parse_percent": "durations",
    "SPEC_FILES": "loading", "find_spec_file": "loading", "load_spec": "loading", "parse_spec": "loading",
    "AppSpec": "models", "EnvSettings": "models", "EnvSpec": "models", "ProbeSpec": "models", "Spec": "models",
    "StopSpec": "processes",
}

__all__ = [
    "SPEC_FILES",
    "AppSpec",
    "EnvSettings",
    "EnvSpec",
    "ProbeSpec",
    "Spec",
    "StopSpec",
    "find_spec_file",
    "format_duration",
    "load_spec",
    "parse_duration",
    "parse_percent",
    "parse_spec",
]


def __getattr__(name: str) -> Any:
    sub = _WHERE.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value  # once: later lookups are plain module attributes
    return value
