"""Where a repository's objects live: a local directory, an S3-compatible bucket or an SFTP server.

An ``ObjectStore`` is a flat namespace of immutable objects (``config``, ``snapshots/<id>``,
``data/<xx>/<blob id>``). Every object is small (a blob is at most the chunker's maximum, 8 MiB), so a put
is one request that either lands whole or not at all: local and SFTP stores write ``<name>.tmp`` and rename,
S3 makes an object visible only when its PUT completes. Nothing here knows about encryption.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from shipyard.errors import BadInput, NotFound, Refused
from shipyard.primitives.spec.backup import BackupSpec


class ObjectStore(Protocol):
    url: str  # for messages (never holds credentials)

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes: ...

    def list(self, prefix: str) -> dict[str, int]:
        """Object names under ``prefix`` with their sizes."""

    def delete(self, name: str) -> None: ...

    def cleanup(self) -> int:
        """Removes what interrupted writers left below the object level (temp files, multipart parts)."""

    def close(self) -> None: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, name: str) -> Path:
        return self.root / name

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.url}: object {name} is missing") from None

    def list(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        if not base.is_dir():
            return {}
        out: dict[str, int] = {}
        for dirpath, _, files in os.walk(base):
            for f in files:
                if not f.endswith(".tmp"):
                    p = Path(dirpath) / f
                    out[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return out

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def cleanup(self) -> int:
        n = 0
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                if f.endswith(".tmp"):
                    (Path(dirpath) / f).unlink(missing_ok=True)
                    n += 1
        return n

    def close(self) -> None:
        pass


def open_store(url: str, spec: BackupSpec, secrets: Mapping[str, str], base_dir: Path) -> ObjectStore:
    """``s3://bucket/prefix``, ``sftp://user@host[:port]/path`` or a local path (relative to ``base_dir``)."""
    if url.startswith("s3://"):
        from shipyard.engine.backup.store_s3 import S3Store

        return S3Store.from_spec(url, spec, secrets)
    if url.startswith("sftp://"):
        from shipyard.engine.backup.store_sftp import SftpStore

        return SftpStore.from_spec(url, spec, base_dir)
    if "://" in url:
        raise BadInput(f"backup repository {url!r}: unknown scheme (use a path, s3://bucket/prefix or "
                       "sftp://user@host/path)")
    p = Path(url).expanduser()
    return LocalStore(p if p.is_absolute() else base_dir / p)


@contextlib.contextmanager
def writer_lock(lock_dir: Path, store: ObjectStore, what: str) -> Iterator[None]:
    """One writer per repository: an flock on this machine — ``<repo>/lock`` for a local repository, else a
    file in ``lock_dir`` named by the repository's address. Remote repositories are written from one machine
    (the environment's), so a local lock is enough."""
    if isinstance(store, LocalStore):
        path = store.root / "lock"
    else:
        path = lock_dir / f"{hashlib.sha256(store.url.encode()).hexdigest()[:24]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(f"repository {store.url} is busy (another backup or forget is running); "
                          f"cannot {what} now") from None
        yield
    finally:
        os.close(fd)
