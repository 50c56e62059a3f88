"""A backup repository (format 2): deduplicated, encrypted blobs and sealed snapshots in an object store.

    config                  {"format": "shipyard-backup/2", "key_id": ..., "mac": ...} — the only clear object:
                            it binds the repository to one key (a wrong key is refused up front)
    snapshots/<backup id>   the sealed manifest of one backup (source, blobs in order, metadata)
    data/<xx>/<blob id>     one encrypted content-defined chunk, shared by every backup that contains it

A backup exists once its snapshot exists; the snapshot is written after every blob it names. What an
interrupted writer leaves (blobs no snapshot names, temp files, multipart parts) is removed by the next
writer under the lock (``collect``). Backup ids are ``YYYYMMDDTHHMMSSZ-xxxxxx``: the start time is the only
thing about a backup readable without the key (besides how many blobs there are and their sizes).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from shipyard.engine.backup.blobs import Sealer, blob_name
from shipyard.engine.backup.keys import BackupKey
from shipyard.engine.backup.manifest import Manifest
from shipyard.engine.backup.stores import ObjectStore, writer_lock
from shipyard.errors import BadInput, IntegrityError, NotFound, ShipyardError

REPO_FORMAT = "shipyard-backup/2"
SNAPSHOTS = "snapshots/"
DATA = "data/"


def new_backup_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)


class Repository:
    def __init__(self, store: ObjectStore, key: BackupKey, lock_dir: Path) -> None:
        self.store = store
        self.key = key
        self.sealer = Sealer(key.material)
        self._lock_dir = lock_dir
        self._cache: dict[str, Manifest] = {}  # snapshots are immutable: decrypted once per name

    @property
    def url(self) -> str:
        return self.store.url

    def __repr__(self) -> str:
        return f"Repository({self.url!r})"

    # -- key binding -------------------------------------------------------------------------------------
    def _config_body(self) -> dict[str, str]:
        return {"format": REPO_FORMAT, "key_id": self.key.key_id}

    def check_key(self, *, create: bool) -> None:
        """Refuses a key other than the one the repository was written with (before any output)."""
        try:
            raw = self.store.get("config")
        except NotFound:
            if not create:
                return
            body = self._config_body()
            mac = self.key.mac(json.dumps(body, sort_keys=True).encode())
            self.store.put("config", json.dumps({**body, "mac": mac}, sort_keys=True).encode() + b"\n")
            return
        try:
            doc = json.loads(raw)
            stored, mac = str(doc.pop("key_id")), str(doc.pop("mac"))
            fmt = str(doc["format"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise IntegrityError(f"{self.url}: unreadable repository configuration") from exc
        if fmt != REPO_FORMAT:
            raise BadInput(f"{self.url}: repository format {fmt!r}, this shipyard reads {REPO_FORMAT!r}")
        if stored != self.key.key_id:
            raise BadInput(f"wrong backup key for repository {self.url}: it was written with key {stored}, "
                           f"the key from {self.key.origin} is {self.key.key_id}")
        if mac != self.key.mac(json.dumps({"format": fmt, "key_id": stored}, sort_keys=True).encode()):
            raise IntegrityError(f"{self.url}: repository configuration failed authentication")

    def exists(self) -> bool:
        """True when the repository is there and reachable (its ``config`` can be read)."""
        try:
            self.store.get("config")
        except ShipyardError:
            return False
        return True

    # -- locking and cleanup -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, what: str) -> Iterator[None]:
        with writer_lock(self._lock_dir, self.store, what):
            yield

    def collect(self) -> int:
        """Removes blobs no snapshot names and whatever interrupted writers left. Call with the lock held.
        Skipped when a snapshot cannot be read: its blobs must not be taken for garbage."""
        removed = self.store.cleanup()
        found, problems = self.scan()
        if problems:
            return removed
        used = {b for m in found for b, _ in m.blobs}
        for name in self.store.list(DATA):
            if name.rsplit("/", 1)[-1] not in used:
                self.store.delete(name)
                removed += 1
        return removed

    # -- reading -----------------------------------------------------------------------------------------
    def _snapshot(self, name: str) -> Manifest:
        if name not in self._cache:
            label = f"repository {self.url}"
            m = Manifest.parse(self.sealer.open_doc(name, self.store.get(name), label), f"{label}: {name}")
            if f"{SNAPSHOTS}{m.id}" != name:
                raise IntegrityError(f"{label}: {name} holds backup {m.id} (renamed)")
            self._cache[name] = m
        return self._cache[name]

    def scan(self, source: str | None = None) -> tuple[list[Manifest], list[tuple[str, str]]]:
        """Complete backups (oldest first) and the snapshots that could not be read (id, error)."""
        out: list[Manifest] = []
        problems: list[tuple[str, str]] = []
        for name in sorted(self.store.list(SNAPSHOTS)):
            try:
                m = self._snapshot(name)
            except ShipyardError as exc:
                problems.append((name.removeprefix(SNAPSHOTS), str(exc)))
                continue
            if source is None or m.source == source:
                out.append(m)
        return sorted(out, key=lambda m: (m.created_at, m.id)), problems

    def manifests(self, source: str | None = None) -> list[Manifest]:
        return self.scan(source)[0]

    def load(self, source: str, backup_id: str) -> Manifest:
        name = f"{SNAPSHOTS}{backup_id}"
        try:
            m = self._snapshot(name)
        except NotFound:
            raise NotFound(f"no backup {backup_id!r} of source {source!r} in {self.url}") from None
        if m.source != source:
            raise NotFound(f"backup {backup_id!r} is of source {m.source!r}, not {source!r}")
        return m

    def blobs(self) -> dict[str, int]:
        return {name.rsplit("/", 1)[-1]: size for name, size in self.store.list(DATA).items()}

    def read_blob(self, blob_id: str, label: str) -> bytes:
        return self.sealer.open_blob(blob_id, self.store.get(blob_name(blob_id)), label)

    # -- writing -----------------------------------------------------------------------------------------
    def put_blob(self, blob_id: str, stored: bytes) -> None:
        self.store.put(blob_name(blob_id), stored)

    def commit(self, m: Manifest) -> None:
        name = f"{SNAPSHOTS}{m.id}"
        self.store.put(name, self.sealer.seal_doc(name, m.to_json()))
        self._cache[name] = m

    def copy_from(self, other: Repository, m: Manifest, have: dict[str, int]) -> None:
        """Replicates one backup from ``other`` (same key): the blobs this one lacks, then the snapshot.
        Call with this repository locked."""
        for blob_id, size in m.blobs:
            if have.get(blob_id) != size:
                self.put_blob(blob_id, other.store.get(blob_name(blob_id)))
                have[blob_id] = size
        self.commit(m)

    def delete(self, m: Manifest) -> None:
        """The snapshot only; ``collect`` removes the blobs no other backup uses."""
        name = f"{SNAPSHOTS}{m.id}"
        self.store.delete(name)
        self._cache.pop(name, None)
