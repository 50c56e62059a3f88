"""shipyard.toml: models, loading and validation. Secrets, env resolution and masking live in submodules
(``spec.secrets``, ``spec.envvars``, ``spec.masking``) so that importing the spec stays cheap."""

from __future__ import annotations

from shipyard.primitives.spec.durations import format_duration, parse_duration, parse_percent
from shipyard.primitives.spec.loading import SPEC_FILES, find_spec_file, load_spec, parse_spec
from shipyard.primitives.spec.models import AppSpec, EnvSettings, EnvSpec, ProbeSpec, Spec
from shipyard.primitives.spec.processes import StopSpec

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
