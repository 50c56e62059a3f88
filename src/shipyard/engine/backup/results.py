"""What the backup operations return: one frozen result per source, repository or backup, with ``to_dict``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.backup.retention import RetentionDecision
from shipyard.engine.backup.sources.base import RestoreCheck


@dataclass(frozen=True)
class CopyResult:
    repository: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class RunResult:
    source: str
    kind: str
    ok: bool
    started_at: float
    duration_s: float
    backup_id: str | None = None
    plain_size: int = 0
    stored_size: int = 0
    error: str | None = None
    copies: tuple[CopyResult, ...] = ()
    cleaned: int = 0
    pitr: dict[str, Any] | None = None  # pgBackRest runs: {"type": full|incr, "notes": [...]}

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "kind": self.kind, "ok": self.ok, "backup_id": self.backup_id,
               "started_at": self.started_at, "duration_s": round(self.duration_s, 3),
               "plain_size": self.plain_size, "stored_size": self.stored_size, "error": self.error,
               "copies": [c.__dict__ for c in self.copies], "cleaned": self.cleaned}
        if self.pitr is not None:
            out["pitr"] = self.pitr
        return out


@dataclass(frozen=True)
class BackupVerifyResult:
    repository: str
    source: str
    backup_id: str
    ok: bool
    chunks: int
    chunks_read: int
    error: str | None = None
    detail: str | None = None  # pgBackRest: its verify summary

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RestoreResult:
    source: str
    backup_id: str
    target: str
    duration_s: float
    checks: tuple[RestoreCheck, ...] = ()
    note: str | None = None  # what to do next (PITR: how to start the restored cluster)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "backup_id": self.backup_id, "target": self.target, "ok": self.ok,
                "duration_s": round(self.duration_s, 3), "checks": [c.to_dict() for c in self.checks],
                "note": self.note}


@dataclass(frozen=True)
class PitrStatus:
    """What a PITR source's pgBackRest repository holds: backup sets and the WAL archive range."""

    source: str
    repository: str
    backups: tuple[dict[str, Any], ...] = ()  # label, type, start, stop, size, stored
    archive_min: str | None = None
    archive_max: str | None = None
    newest_archived_at: float | None = None  # arrival of the newest archived segment
    restorable_until: float | None = None  # the newest restorable point (now when nothing is pending)
    error: str | None = None

    @property
    def restorable_from(self) -> float | None:
        return min((b["stop"] for b in self.backups), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "repository": self.repository, "backups": list(self.backups),
                "archive": {"min": self.archive_min, "max": self.archive_max,
                            "newest_archived_at": self.newest_archived_at},
                "restorable": {"from": self.restorable_from, "to": self.restorable_until}, "error": self.error}


@dataclass(frozen=True)
class ForgetResult:
    repository: str
    source: str
    decisions: tuple[RetentionDecision, ...] = field(default_factory=tuple)
    removed: bool = False  # False for --dry-run

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "source": self.source, "removed": self.removed,
                "keep": [{"id": d.id, "reasons": list(d.reasons)} for d in self.decisions if d.keep],
                "remove": [d.id for d in self.decisions if not d.keep]}
