"""Backups: sources, the encrypted streamed pipeline, repositories, retention and restore drills.

Entry points: ``Backups`` (run/list/verify/restore/forget), ``run_drills``, ``load_key``, ``apply_policy``.
The engine returns results; recording them in the state store is the caller's job.
"""

from __future__ import annotations

from shipyard.engine.backup.drill import DrillResult, run_drills
from shipyard.engine.backup.keys import BackupKey, load_key
from shipyard.engine.backup.manifest import Manifest
from shipyard.engine.backup.results import (
    BackupVerifyResult,
    CopyResult,
    ForgetResult,
    RestoreResult,
    RunResult,
)
from shipyard.engine.backup.retention import RetentionDecision, apply_policy
from shipyard.engine.backup.service import Backups
from shipyard.engine.backup.sources.base import RestoreCheck

__all__ = [
    "BackupKey", "BackupVerifyResult", "Backups", "CopyResult", "DrillResult", "ForgetResult", "Manifest",
    "RestoreCheck", "RestoreResult", "RetentionDecision", "RunResult", "apply_policy", "load_key", "run_drills",
]
