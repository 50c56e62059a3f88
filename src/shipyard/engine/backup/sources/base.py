"""What every source kind shares: dump results, restore targets and check results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

_BLOCK = 1 << 20


@dataclass(frozen=True)
class DumpInfo:
    snapshot_time: float
    meta: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreCheck:
    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class RestoreTarget:
    """Where a restore goes: a PostgreSQL URL, a path, or (``original``) the source itself."""

    url: str | None = None
    path: Path | None = None
    replace: bool = False  # allowed to overwrite existing data (explicit confirmation)


class Writable(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> int: ...


BLOCK = _BLOCK
