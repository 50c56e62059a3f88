"""The build cache: a directory a build makes (``.venv``) reused by the next release whose key files match.

``[app] build_cache = [{ path = ".venv", key = ["requirements.txt"] }]``. Before the build commands run,
each rule's key is computed — the path, the contents of the key files (a missing one counts as
missing) and the ``python3`` the build would run — and when ``<state>/cache/build/<name>-<key>/`` holds
an entry, its tree is put at ``<release>/<path>``; the build commands then run as always (on a hit,
``pip install -r requirements.txt`` finds everything installed and is done in a second). After a
successful build that missed, the path is saved as the key's entry. Keep the build commands idempotent
(``test -x .venv/bin/python || python3 -m venv .venv``).

Entries and releases share their files as hard links (no copy, no extra disk), except the files that
name the directory they were built in: a virtualenv bakes its absolute path into its scripts'
shebangs, ``pyvenv.cfg`` and ``activate``, so those files (listed in the entry when it is saved) are
written anew with the new release's path — the venv works where it is restored, and the entry keeps
working when the release it came from is pruned. Compiled files (``.pyc``) also hold the old path, for
tracebacks only: Python corrects it on import. The newest ``KEEP_ENTRIES`` entries of each path are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shipyard.errors import BadInput

CACHE = "cache/build"  # under the state dir
KEEP_ENTRIES = 3
_META = "entry.json"
_TREE = "tree"
_SCAN_LIMIT = 8 << 20  # files larger than this are never scanned for the build path (and never hold it)


@dataclass(frozen=True)
class CacheRule:
    path: str  # relative to the release
    key: tuple[str, ...]  # files whose contents decide whether an entry fits


def cache_key(release: Path, rule: CacheRule, python: str | None) -> str:
    h = hashlib.sha256(f"path={rule.path}\npython={python or '-'}\n".encode())
    for name in rule.key:
        f = release / name
        digest = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "missing"
        h.update(f"{name}={digest}\n".encode())
    return h.hexdigest()[:24]


def _entry(state_dir: Path, rule: CacheRule, key: str) -> Path:
    slug = PurePosixPath(rule.path).as_posix().strip("/").replace("/", "_") or "root"
    return state_dir / CACHE / f"{slug}-{key}"


def check_rule(rule: CacheRule) -> PurePosixPath:
    path = PurePosixPath(rule.path)
    for p in (path, *map(PurePosixPath, rule.key)):
        if p.is_absolute() or ".." in p.parts or str(p) in (".", ""):
            raise BadInput(f"app.build_cache: {str(p)!r} must be a relative path inside the release (no '..')")
    return path


def restore(state_dir: Path, release: Path, rule: CacheRule, key: str, emit: Callable[[str], None]) -> bool:
    """Put the entry for ``key`` at ``release/<path>``; False (and nothing done) on a miss."""
    entry = _entry(state_dir, rule, key)
    try:
        meta = json.loads((entry / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        emit(f"[build cache] miss: {rule.path} (key {key[:12]})")
        return False
    t0 = time.monotonic()
    dest = release / rule.path
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    relocate = set(meta.get("relocate", []))
    old, new = str(meta["origin"]).encode(), str(dest).encode()
    _link_tree(entry / _TREE, dest, lambda rel, src, dst: _rewrite(src, dst, old, new) if rel in relocate else False)
    os.utime(entry / _META)  # most recently used: kept longest
    emit(f"[build cache] hit: {rule.path} (key {key[:12]}) restored in {time.monotonic() - t0:.2f}s, "
         f"{len(relocate)} file(s) moved to this release's path")
    return True


def save(state_dir: Path, release: Path, rule: CacheRule, key: str, emit: Callable[[str], None]) -> None:
    """Keep ``release/<path>`` as the entry for ``key`` (hard links), unless there is one or it is absent."""
    src = release / rule.path
    entry = _entry(state_dir, rule, key)
    if not src.is_dir() or src.is_symlink() or (entry / _META).exists():
        return
    t0 = time.monotonic()
    tmp = entry.parent / f".tmp-{entry.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    origin = str(src).encode()
    relocate: list[str] = []

    def note(rel: str, file: Path, _dst: Path) -> bool:
        if _names(file, origin):
            relocate.append(rel)
        return False

    _link_tree(src, tmp / _TREE, note)
    (tmp / _META).write_text(json.dumps({"origin": str(src), "key": key, "path": rule.path, "relocate": relocate,
                                         "created_at": time.time()}) + "\n", encoding="utf-8")
    try:
        os.rename(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # a concurrent build saved the same key first
        return
    emit(f"[build cache] saved: {rule.path} (key {key[:12]}) in {time.monotonic() - t0:.2f}s")
    _prune(entry.parent, entry.name.rsplit("-", 1)[0])


def _link_tree(src: Path, dst: Path, special: Callable[[str, Path, Path], bool]) -> None:
    """``dst`` as a copy of ``src``: dirs made, symlinks copied, files hard-linked unless ``special(rel,
    src_file, dst_file)`` has written the file itself (returns True); copied where links fail."""
    dst.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        out = dst / rel_dir
        for name in list(dirnames):
            full = here / name
            if full.is_symlink():
                dirnames.remove(name)
                (out / name).symlink_to(os.readlink(full))
            else:
                (out / name).mkdir(mode=full.stat().st_mode & 0o7777)
        for name in filenames:
            full = here / name
            if full.is_symlink():
                (out / name).symlink_to(os.readlink(full))
            elif not special((rel_dir / name).as_posix(), full, out / name):
                try:
                    os.link(full, out / name)
                except OSError:
                    shutil.copy2(full, out / name)


def _names(file: Path, origin: bytes) -> bool:
    """True for a text file that holds ``origin``."""
    try:
        if file.stat().st_size > _SCAN_LIMIT:
            return False
        data = file.read_bytes()
        return origin in data and b"\0" not in data  # binaries (.pyc) are left as they are
    except OSError:
        return False


def _rewrite(src: Path, dst: Path, old: bytes, new: bytes) -> bool:
    data = src.read_bytes()
    if b"\0" in data:
        return False  # binary: a path of another length would corrupt it; linked as it is
    dst.write_bytes(data.replace(old, new))
    os.chmod(dst, src.stat().st_mode & 0o7777)
    return True


def _prune(root: Path, slug: str) -> None:
    entries = [e for e in root.iterdir() if e.name.rsplit("-", 1)[0] == slug and (e / _META).exists()]
    entries.sort(key=lambda e: (e / _META).stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)
