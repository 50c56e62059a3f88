"""Load verification settings (owned by the verify work)."""

from __future__ import annotations

from shipyard.primitives.spec.base import Duration, SpecModel


class VerifySpec(SpecModel):
    rate: float = 1000.0
    duration: Duration = 60.0
    thresholds: dict[str, list[str]] = {}
