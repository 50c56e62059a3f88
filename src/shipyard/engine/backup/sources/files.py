"""Directories: a PAX tar stream (modes, owners, mtimes, symlinks kept) hashed as it is written.

The manifest records a digest of the tree — per entry: path, type, mode, whole-second mtime, size and
SHA-256 of the content — so a drill can prove a restored tree is the one backed up without the manifest
listing file names in clear.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from shipyard.engine.backup.pipeline import StreamReader, drain
from shipyard.engine.backup.sources.base import BLOCK, DumpInfo, RestoreCheck, RestoreTarget, Writable
from shipyard.errors import NotFound, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.backup import FilesSource


class _HashingReader:
    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.sha256.update(data)
        return data


def _line(rel: str, st: os.stat_result, sha: str) -> str:
    kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
    if kind == "l":  # a symlink's own mode and mtime are not restorable (tar sets neither)
        return f"{rel}\tl\t0\t0\t0\t{sha}\n"
    size = st.st_size if kind == "f" else 0
    return f"{rel}\t{kind}\t{stat.S_IMODE(st.st_mode):o}\t{int(st.st_mtime)}\t{size}\t{sha}\n"


def _entries(root: Path) -> Iterator[tuple[str, Path]]:
    yield ".", root  # the root's own mode and mtime are restored too
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = Path(dirpath) / name
            yield full.relative_to(root).as_posix(), full


def _summary(lines: list[str]) -> dict[str, Any]:
    digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    return {"entries": len(lines), "tree_sha256": digest}


def tree_digest(root: Path) -> dict[str, Any]:
    """The same summary as recorded at backup time, computed from a directory on disk."""
    lines: list[str] = []
    total = 0
    for rel, full in _entries(root):
        st = full.lstat()
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(full, "rb") as fh:
                while block := fh.read(BLOCK):
                    h.update(block)
            lines.append(_line(rel, st, h.hexdigest()))
            total += st.st_size
        elif stat.S_ISLNK(st.st_mode):
            lines.append(_line(rel, st, hashlib.sha256(os.readlink(full).encode()).hexdigest()))
        elif stat.S_ISDIR(st.st_mode):
            lines.append(_line(rel, st, ""))
    return {**_summary(lines), "bytes": total}


def dump(src: FilesSource, root: Path, sink: Writable, clock: Clock) -> DumpInfo:
    if not root.is_dir():
        raise NotFound(f"source {src.name!r}: directory {root} does not exist")
    snapshot_time = clock.time()
    lines: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for rel, full in _entries(root):
                st = full.lstat()
                info = tar.gettarinfo(str(full), arcname=rel)
                if info is None:
                    continue  # sockets cannot be archived
                if info.isreg():
                    with open(full, "rb") as fh:
                        reader = _HashingReader(fh)
                        tar.addfile(info, reader)
                    lines.append(_line(rel, st, reader.sha256.hexdigest()))
                    total += info.size
                else:
                    tar.addfile(info)
                    if info.issym():
                        lines.append(_line(rel, st, hashlib.sha256(info.linkname.encode()).hexdigest()))
                    elif info.isdir():
                        lines.append(_line(rel, st, ""))
    except OSError as exc:
        raise ShipyardError(f"source {src.name!r}: reading {root} failed: {exc}") from exc
    return DumpInfo(snapshot_time, {**_summary(lines), "bytes": total}, {"tar": "python tarfile (pax)"})


def _keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    # tar_filter refuses absolute paths and escapes from dest; it also strips group/other write and setuid
    # bits, which a faithful restore must keep (the archive is authenticated: we wrote it).
    safe = tarfile.tar_filter(member, dest)
    return safe.replace(mode=member.mode, deep=False)


def restore(src: FilesSource, original: Path, blocks: Iterator[bytes], target: RestoreTarget) -> Path:
    dest = target.path or original
    occupied = dest.exists() and (not dest.is_dir() or any(dest.iterdir()))
    if occupied and not target.replace:
        raise Refused(f"{dest} exists and is not empty; pass --yes to restore over it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.restore-"))
    try:
        with tarfile.open(fileobj=StreamReader(blocks), mode="r|") as tar:
            tar.extractall(tmp, filter=_keep_modes)
        drain(blocks)  # the end checks (sizes, SHA-256) run when the stream is exhausted
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except tarfile.TarError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ShipyardError(f"restoring source {src.name!r}: tar stream invalid: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def check(path: Path, meta: dict[str, Any]) -> list[RestoreCheck]:
    got = tree_digest(path)
    return [
        RestoreCheck("entries", got["entries"] == meta.get("entries"), f"{got['entries']}, manifest {meta.get('entries')}"),
        RestoreCheck("bytes", got["bytes"] == meta.get("bytes"), f"{got['bytes']}, manifest {meta.get('bytes')}"),
        RestoreCheck("tree_sha256", got["tree_sha256"] == meta.get("tree_sha256"),
              "hashes, modes and mtimes match" if got["tree_sha256"] == meta.get("tree_sha256") else "differs"),
    ]
