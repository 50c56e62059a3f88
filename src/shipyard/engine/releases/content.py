"""``content_hash``: a digest of a release tree that does not depend on timestamps or the walk order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath


def content_hash(root: Path, exclude: Iterable[str] = ()) -> str:
    """``sha256:<hex>`` over the sorted relative paths, kinds, exec bits and contents under root.

    Symlinks are hashed by their target text and never followed; ``exclude`` names relative paths
    (POSIX form) left out entirely, with everything under them.
    """
    skip = {str(PurePosixPath(p)) for p in exclude}
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            if rel in skip:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if full.is_symlink():
                entries.append((rel, "L " + os.readlink(full)))
            elif full.is_dir():
                entries.append((rel, "D"))
            else:
                mode = "x" if full.stat().st_mode & 0o100 else "-"
                entries.append((rel, f"F {mode} {_file_sha256(full)}"))
    h = hashlib.sha256()
    for rel, desc in sorted(entries):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + desc.encode("utf-8", "surrogateescape") + b"\n")
    return "sha256:" + h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


