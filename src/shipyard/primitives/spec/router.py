"""Per-environment router settings (owned by the router work)."""

from __future__ import annotations

from shipyard.primitives.spec.base import SpecModel


class RouterEnvSpec(SpecModel):
    max_body_size: int = 100 * 1024 * 1024
