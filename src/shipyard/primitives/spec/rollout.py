"""Canary and automatic-rollback settings (owned by the canary/analysis work)."""

from __future__ import annotations

from typing import Any

from shipyard.primitives.spec.base import Duration, SpecModel


class CanarySpec(SpecModel):
    steps: list[Any] = [10, 50, 100]
    step_duration: Duration = 20.0


class RollbackSpec(SpecModel):
    error_rate: dict[str, Any] | None = None
    p95: dict[str, Any] | None = None
    cpu: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    health_failures: int | None = None
