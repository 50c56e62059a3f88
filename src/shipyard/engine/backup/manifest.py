"""The manifest of one backup: which blobs, in which order, make its stream, and what the data held.

It is stored sealed (``snapshots/<id>``, see ``blobs.py``): the per-kind metadata (row counts per table, a
digest of the file tree, ...), sizes and timings are readable only with the key. It is written last, after
every blob it names: a backup without a snapshot does not exist.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.errors import IntegrityError

FORMAT = 2


@dataclass(frozen=True)
class Manifest:
    id: str
    source: str
    kind: str
    created_at: float  # wall time the backup started
    snapshot_time: float  # the moment the data reflects (what RPO is measured from)
    finished_at: float
    key_id: str
    compression: str
    plain_size: int
    plain_sha256: str
    stored_size: int  # bytes this backup added to the repository (new blobs only)
    total_stored: int  # bytes of all the blobs it references
    blobs: list[tuple[str, int]] = field(default_factory=list)  # (blob id, stored size), in stream order
    meta: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def chunks(self) -> int:
        return len(self.blobs)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("blobs")
        doc["chunks"] = self.chunks
        return doc

    @staticmethod
    def parse(data: bytes, label: str) -> Manifest:
        try:
            doc = json.loads(data)
            doc["blobs"] = [(str(b), int(n)) for b, n in doc["blobs"]]
            return Manifest(**doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise IntegrityError(f"{label}: manifest is unreadable ({exc})") from exc
