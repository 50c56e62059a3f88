"""The manifest of one backup: written last and atomically; a backup without one does not exist.

It is JSON in clear (listing and retention need no key) with an HMAC under the backup key, so it cannot be
edited to match a tampered data file. It holds sizes and SHA-256 of plaintext and stored bytes, timings,
tool versions and per-kind metadata (row counts per table, a digest of the file tree, ...) used by drills.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.engine.backup.keys import BackupKey
from shipyard.errors import IntegrityError

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    id: str
    source: str
    kind: str
    created_at: float  # wall time the backup started
    snapshot_time: float  # the moment the data reflects (what RPO is measured from)
    finished_at: float
    key_id: str
    chunk_size: int
    chunks: int
    compression: str
    plain_size: int
    plain_sha256: str
    stored_size: int
    stored_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT

    def _body(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def to_json(self, key: BackupKey) -> bytes:
        doc = asdict(self)
        doc["mac"] = key.mac(self._body())
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def parse(data: bytes, label: str) -> tuple[Manifest, str]:
        """The manifest and its stored MAC (checked separately: listing needs no key)."""
        try:
            doc = json.loads(data)
            mac = str(doc.pop("mac"))
            return Manifest(**doc), mac
        except (ValueError, TypeError, KeyError) as exc:
            raise IntegrityError(f"{label}: manifest is unreadable ({exc})") from exc

    def check_mac(self, mac: str, key: BackupKey, label: str) -> None:
        if not hmac.compare_digest(mac, key.mac(self._body())):
            raise IntegrityError(f"{label}: manifest failed authentication (edited or corrupted)")
