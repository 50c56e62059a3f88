"""Fixtures for backup tests: a random key, a repository dir and a spec builder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.backup import BackupKey, Backups
from shipyard.primitives.spec.backup import BackupSpec


@pytest.fixture
def key() -> BackupKey:
    return BackupKey(secrets.token_bytes(32), "test key")


@pytest.fixture
def make_backups(tmp_path: Path, key: BackupKey) -> Callable[..., Backups]:
    """Backups for the given sources with a repository under tmp_path; extra BackupSpec fields as kwargs."""

    def make(sources: list[dict[str, Any]], *, chunk_size: int = 256 * 1024, use_key: BackupKey | None = None,
             **fields: Any) -> Backups:
        spec = BackupSpec.model_validate({"repository": str(tmp_path / "repo"), "sources": sources, **fields})
        return Backups(spec, use_key or key, base_dir=tmp_path, chunk_size=chunk_size)

    return make


def make_tree(root: Path) -> None:
    """A small tree with odd modes, a symlink, an empty dir, binary content and set mtimes."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("hello\n" * 1000)
    (root / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    (root / "sub" / "deeper" / "c.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "link").symlink_to("sub/b.bin")
    os.chmod(root / "sub" / "deeper" / "c.sh", 0o751)
    os.chmod(root / "a.txt", 0o664)
    os.chmod(root / "empty", 0o700)
    for i, p in enumerate([root / "a.txt", root / "sub" / "b.bin", root / "sub" / "deeper" / "c.sh",
                           root / "sub" / "deeper", root / "empty", root / "sub"]):
        os.utime(p, (1_600_000_000.25 + i, 1_600_000_000.5 + i * 1000))
