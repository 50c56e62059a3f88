"""A backup repository: a directory of encrypted data files and their manifests.

    <repo>/repo.json              {"format": "shipyard-backup/1", "key_id": ...} — binds the repo to one key
    <repo>/lock                   flock held by writers (run, forget, copy)
    <repo>/<source>/<id>.data     the stored stream (written as <id>.data.tmp, renamed when complete)
    <repo>/<source>/<id>.json     the manifest, written last (via <id>.json.tmp + rename)

Only backups with a manifest exist. A writer that dies leaves ``*.tmp`` files or a data file without a
manifest; the next writer removes them under the lock (a dead writer's flock is released by the kernel).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shipyard.engine.backup.keys import BackupKey
from shipyard.engine.backup.manifest import Manifest
from shipyard.errors import BadInput, IntegrityError, Refused

REPO_FORMAT = "shipyard-backup/1"


def new_backup_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Repository:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Repository({str(self.root)!r})"

    # -- key binding -------------------------------------------------------------------------------------
    def check_key(self, key: BackupKey, *, create: bool) -> None:
        """Refuses a key other than the one the repository was written with (before any output)."""
        conf = self.root / "repo.json"
        if not conf.exists():
            if not create:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = conf.with_suffix(".json.tmp")
            tmp.write_text(json.dumps({"format": REPO_FORMAT, "key_id": key.key_id}) + "\n")
            os.replace(tmp, conf)
            return
        try:
            stored = json.loads(conf.read_text())["key_id"]
        except (ValueError, KeyError) as exc:
            raise IntegrityError(f"{conf}: unreadable repository configuration") from exc
        if stored != key.key_id:
            raise BadInput(f"wrong backup key for repository {self.root}: it was written with key {stored}, "
                           f"the key from {key.origin} is {key.key_id}")

    # -- locking and cleanup -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, what: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Refused(f"repository {self.root} is busy (another backup or forget is running); "
                              f"cannot {what} now") from None
            yield
        finally:
            os.close(fd)

    def clean_leftovers(self) -> list[Path]:
        """Removes what interrupted writers left behind. Call with the lock held."""
        removed: list[Path] = []
        for src_dir in self._source_dirs():
            for path in src_dir.iterdir():
                orphan = path.suffix == ".data" and not path.with_suffix(".json").exists()
                if path.name.endswith(".tmp") or orphan:
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    # -- reading -----------------------------------------------------------------------------------------
    def _source_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir())

    def data_path(self, m: Manifest) -> Path:
        return self.root / m.source / f"{m.id}.data"

    def manifests(self, source: str | None = None) -> list[Manifest]:
        """Complete backups, oldest first."""
        out: list[Manifest] = []
        dirs = [self.root / source] if source else self._source_dirs()
        for d in dirs:
            if not d.is_dir():
                continue
            for path in d.glob("*.json"):
                if path.with_suffix(".data").exists():
                    out.append(Manifest.parse(path.read_bytes(), str(path))[0])
        return sorted(out, key=lambda m: (m.created_at, m.id))

    def load(self, source: str, backup_id: str, key: BackupKey | None = None) -> Manifest:
        path = self.root / source / f"{backup_id}.json"
        if not path.exists() or not path.with_suffix(".data").exists():
            from shipyard.errors import NotFound

            raise NotFound(f"no backup {backup_id!r} of source {source!r} in {self.root}")
        m, mac = Manifest.parse(path.read_bytes(), str(path))
        if key is not None:
            m.check_mac(mac, key, f"backup {backup_id}")
        return m

    def authenticated(self, m: Manifest, key: BackupKey) -> Manifest:
        return self.load(m.source, m.id, key)

    def open_data(self, m: Manifest) -> BinaryIO:
        return open(self.data_path(m), "rb")

    # -- writing -----------------------------------------------------------------------------------------
    def tmp_data_path(self, source: str, backup_id: str) -> Path:
        d = self.root / source
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{backup_id}.data.tmp"

    def commit(self, m: Manifest, key: BackupKey, tmp_data: Path) -> None:
        """Makes a written backup exist: data renamed into place, then the manifest, each durably."""
        d = self.root / m.source
        data = d / f"{m.id}.data"
        os.replace(tmp_data, data)
        tmp = d / f"{m.id}.json.tmp"
        with open(tmp, "wb") as fh:
            fh.write(m.to_json(key))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, d / f"{m.id}.json")
        _fsync_dir(d)

    def copy_from(self, other: Repository, m: Manifest, key: BackupKey) -> None:
        """Replicates one backup from ``other`` (same layout, same key); call with this repo locked."""
        tmp = self.tmp_data_path(m.source, m.id)
        with other.open_data(m) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        self.commit(m, key, tmp)

    def delete(self, m: Manifest) -> None:
        # Manifest first: a half-deleted backup must not look complete.
        (self.root / m.source / f"{m.id}.json").unlink(missing_ok=True)
        self.data_path(m).unlink(missing_ok=True)
