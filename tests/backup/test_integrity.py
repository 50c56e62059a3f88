"""Stored backups that were tampered with — flipped bytes in any object, truncated, missing or swapped blobs,
the wrong key — make verify and restore fail with a clear message and write no output."""

from __future__ import annotations

import os
import random
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.engine.backup import BackupKey, Backups, Manifest
from shipyard.errors import BadInput, ShipyardError

CHUNK = 1024


@pytest.fixture
def stored(tmp_path: Path, make_backups: Callable[..., Backups]) -> Iterator[tuple[Backups, Manifest, Path]]:
    src = tmp_path / "uploads"
    src.mkdir()
    # Incompressible content so the backup has many blobs.
    (src / "data.bin").write_bytes(random.Random(7).randbytes(60_000))
    backups = make_backups([{"kind": "files", "name": "uploads", "path": "uploads"}], chunk_size=CHUNK)
    [res] = backups.run()
    assert res.ok, res.error
    m = backups.newest("uploads")
    assert m is not None and m.chunks > 20
    yield backups, m, tmp_path / "repo"


def _objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "lock")


def _blob(root: Path, blob_id: str) -> Path:
    return root / "data" / blob_id[:2] / blob_id


def _expect_failure(backups: Backups, tmp_path: Path, pattern: str) -> None:
    backups.repo._cache.clear()  # a fresh process reads every object again
    try:
        results = backups.verify()
    except ShipyardError as exc:  # the repository configuration itself
        assert re.search(pattern, str(exc)), str(exc)
    else:
        bad = [v for v in results if not v.ok]
        assert bad and all(v.error for v in bad), results
        assert any(re.search(pattern, v.error or "") for v in bad), bad
    out = tmp_path / "out"
    with pytest.raises(ShipyardError, match=pattern):
        backups.restore("uploads", to_path=out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_intact_backup_verifies(stored: tuple[Backups, Manifest, Path]) -> None:
    backups, m, _ = stored
    [v] = backups.verify()
    assert v.ok and v.chunks_read == m.chunks
    [sub] = backups.verify(subset=0.1, rng=random.Random(1))
    assert sub.ok and 0 < sub.chunks_read < m.chunks


AUTH = r"failed authentication|truncated|unreadable|wrong backup key|does not decompress|holds other data"


def test_flipping_a_byte_in_any_object_is_detected(stored: tuple[Backups, Manifest, Path], tmp_path: Path) -> None:
    backups, m, root = stored
    objects = _objects(root)
    assert len(objects) == len({b for b, _ in m.blobs}) + 2  # config, one snapshot, the blobs
    rng = random.Random(3)
    for path in objects:
        original = path.read_bytes()
        for pos in {0, len(original) // 2, len(original) - 1, rng.randrange(len(original))}:
            data = bytearray(original)
            data[pos] ^= 0x40
            path.write_bytes(bytes(data))
            _expect_failure(backups, tmp_path, AUTH)
        path.write_bytes(original)
    backups.repo._cache.clear()
    assert all(v.ok for v in backups.verify())


def test_truncated_or_missing_blob_is_detected(stored: tuple[Backups, Manifest, Path], tmp_path: Path) -> None:
    backups, m, root = stored
    blob = _blob(root, m.blobs[m.chunks // 2][0])
    original = blob.read_bytes()
    blob.write_bytes(original[:-1])
    _expect_failure(backups, tmp_path, r"bytes, the manifest says|failed authentication")
    blob.write_bytes(original + b"\0")
    _expect_failure(backups, tmp_path, r"bytes, the manifest says|failed authentication")
    blob.unlink()
    [v] = backups.verify()
    assert not v.ok and "is missing" in (v.error or "")


def test_swapping_two_blobs_is_detected(stored: tuple[Backups, Manifest, Path], tmp_path: Path) -> None:
    backups, m, root = stored
    a, b = _blob(root, m.blobs[0][0]), _blob(root, m.blobs[-1][0])
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    _expect_failure(backups, tmp_path, r"failed authentication|bytes, the manifest says")


def test_snapshot_of_another_backup_is_detected(stored: tuple[Backups, Manifest, Path], tmp_path: Path) -> None:
    backups, m, root = stored
    [res] = backups.run()
    assert res.ok and res.stored_size == 0  # nothing changed: every blob is shared
    (root / "snapshots" / res.backup_id).write_bytes((root / "snapshots" / m.id).read_bytes())
    backups.repo._cache.clear()
    results = backups.verify()
    assert [v.ok for v in results if v.backup_id == m.id] == [True]
    assert [v.ok for v in results if v.backup_id == res.backup_id] == [False]


def test_wrong_key_is_refused_before_any_output(stored: tuple[Backups, Manifest, Path], tmp_path: Path,
                                                make_backups: Callable[..., Backups]) -> None:
    backups, m, _ = stored
    wrong = make_backups([{"kind": "files", "name": "uploads", "path": "uploads"}], chunk_size=CHUNK,
                         use_key=BackupKey(secrets.token_bytes(32), "secret BACKUP_KEY"))
    for action in (lambda: wrong.restore("uploads", to_path=tmp_path / "out"), wrong.verify):
        with pytest.raises(BadInput, match="wrong backup key .* written with key [0-9a-f]{16}"):
            action()
    assert not (tmp_path / "out").exists()
    with pytest.raises(BadInput, match="wrong backup key"):
        wrong.run()
    assert [x.id for x in backups.list_backups()] == [m.id]


def test_key_file_is_generated_0600_and_bad_keys_refused(tmp_path: Path) -> None:
    from shipyard.engine.backup import load_key

    key_file = tmp_path / ".shipyard" / "backup.key"
    with pytest.raises(BadInput, match="no backup key"):
        load_key(None, key_file, create=False)
    k = load_key(None, key_file, create=True)
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert load_key(None, key_file, create=False).key_id == k.key_id
    assert str(k.material) not in repr(k)
    with pytest.raises(ShipyardError, match="base64 of 32"):
        load_key("too short", key_file, create=False)
    os.chmod(key_file, 0o644)
    with pytest.raises(ShipyardError, match="readable by others"):
        load_key(None, key_file, create=False)
