"""Backup settings (owned by the backup work)."""

from __future__ import annotations

from typing import Any

from shipyard.primitives.spec.base import SpecModel


class BackupSpec(SpecModel):
    repository: str
    schedule: str | None = None
    retention: dict[str, Any] = {}
    rto: str | None = None
    rpo: str | None = None
    copy_to: list[str] = []
    sources: list[dict[str, Any]] = []
