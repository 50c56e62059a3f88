"""Audit rows written while the control plane is not running (``secrets set|unset`` before the first
``shipyard up``): appended as JSON lines to ``.shipyard/audit-pending.jsonl`` (0600) by the CLI, moved into
the ``audit`` table by the control plane when it starts. The state database stays the control plane's."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

FILE = "audit-pending.jsonl"
MAX_LINE = 64 * 1024


class AuditSink(Protocol):
    def add_audit(self, at: float, performer: str, action: str, env: str | None = None,
                  target: str | None = None, detail: Any = None) -> None: ...


def record_offline(state_dir: Path, at: float, performer: str, action: str, env: str | None, target: str | None,
                   detail: dict[str, Any] | None = None) -> None:
    """Append one row (names only, never values) for the control plane to import at its next start."""
    line = json.dumps({"at": at, "performer": performer, "action": action, "env": env, "target": target,
                       "detail": {**(detail or {}), "offline": True}})
    fd = os.open(state_dir / FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(line + "\n")


def import_pending(state_dir: Path, store: AuditSink) -> int:
    """Move the pending rows into the audit table; returns how many. A line that does not parse is skipped
    (a torn write), never fatal: the file is someone else's input."""
    path = state_dir / FILE
    taking = path.with_name(f".{FILE}.{os.getpid()}")
    try:
        os.replace(path, taking)  # new offline rows from now on go to a fresh file
    except FileNotFoundError:
        return 0
    n = 0
    with open(taking, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if len(line) > MAX_LINE:
                continue
            try:
                row = json.loads(line)
                store.add_audit(float(row["at"]), str(row["performer"])[:200], str(row["action"])[:64],
                                row.get("env"), row.get("target"), row.get("detail"))
                n += 1
            except (ValueError, KeyError, TypeError):
                continue
    with contextlib.suppress(FileNotFoundError):
        taking.unlink()
    return n
