"""Stored backups that were tampered with — flipped bytes, truncation, swapped chunks, edited manifests,
the wrong key — make verify and restore fail with a clear message and write no output."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.engine.backup import BackupKey, Backups, Manifest
from shipyard.engine.backup.chunks import NONCE, TAG
from shipyard.errors import BadInput, IntegrityError, ShipyardError

CHUNK = 1024


@pytest.fixture
def stored(tmp_path: Path, make_backups: Callable[..., Backups]) -> Iterator[tuple[Backups, Manifest, bytes]]:
    src = tmp_path / "uploads"
    src.mkdir()
    # Incompressible content so the stored file has many chunks.
    (src / "data.bin").write_bytes(random.Random(7).randbytes(60_000))
    backups = make_backups([{"kind": "files", "name": "uploads", "path": "uploads"}], chunk_size=CHUNK)
    [res] = backups.run()
    assert res.ok, res.error
    m = backups.newest("uploads")
    assert m is not None and m.chunks > 40
    yield backups, m, backups.repo.data_path(m).read_bytes()


def _expect_failure(backups: Backups, tmp_path: Path, pattern: str) -> None:
    [v] = backups.verify()
    assert not v.ok and v.error
    assert re.search(pattern, v.error), v.error
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match=pattern):
        backups.restore("uploads", to_path=out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_intact_backup_verifies(stored: tuple[Backups, Manifest, bytes]) -> None:
    backups, m, _ = stored
    [v] = backups.verify()
    assert v.ok and v.chunks_read == m.chunks
    [sub] = backups.verify(subset=0.1, rng=random.Random(1))
    assert sub.ok and 0 < sub.chunks_read < m.chunks


def test_flipping_any_byte_is_detected(stored: tuple[Backups, Manifest, bytes], tmp_path: Path) -> None:
    backups, m, original = stored
    path = backups.repo.data_path(m)
    record = NONCE + CHUNK + TAG
    header = 8 + 6 + len(m.id)
    positions = set(range(header))  # every header byte
    for chunk in (0, 1, m.chunks // 2, m.chunks - 1):  # nonce, body and tag of several records
        start = header + chunk * record
        end = min(start + record, len(original))
        positions |= {start, start + NONCE - 1, start + NONCE, (start + end) // 2, end - TAG, end - 1}
    positions |= set(random.Random(3).sample(range(len(original)), 25))
    assert len(positions) > 60
    for pos in sorted(positions):
        data = bytearray(original)
        data[pos] ^= 0x40
        path.write_bytes(bytes(data))
        _expect_failure(backups, tmp_path, r"chunk \d+ of \d+ failed authentication|bad magic|header is corrupted|files swapped|truncated")
    path.write_bytes(original)
    assert backups.verify()[0].ok


@pytest.mark.parametrize("cut", ["one byte", "tag", "a whole chunk", "to the header", "half"])
def test_truncation_is_detected(stored: tuple[Backups, Manifest, bytes], tmp_path: Path, cut: str) -> None:
    backups, m, original = stored
    record = NONCE + CHUNK + TAG
    size = {"one byte": len(original) - 1, "tag": len(original) - TAG,
            "a whole chunk": len(original) - (len(original) - 8 - 6 - len(m.id)) % record or record,
            "to the header": 8 + 6 + len(m.id), "half": len(original) // 2}[cut]
    backups.repo.data_path(m).write_bytes(original[:size])
    [v] = backups.verify()
    assert not v.ok and v.error and "truncated" in v.error
    with pytest.raises(IntegrityError, match="truncated|failed authentication"):
        backups.restore("uploads", to_path=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_appended_data_is_detected(stored: tuple[Backups, Manifest, bytes], tmp_path: Path) -> None:
    backups, m, original = stored
    backups.repo.data_path(m).write_bytes(original + b"\0" * 100)
    assert not backups.verify()[0].ok


@pytest.mark.parametrize("pair", [(0, 1), (3, 17), (5, -2), (0, -1)])
def test_swapping_two_chunks_is_detected(stored: tuple[Backups, Manifest, bytes], tmp_path: Path,
                                         pair: tuple[int, int]) -> None:
    backups, m, original = stored
    header = 8 + 6 + len(m.id)
    record = NONCE + CHUNK + TAG
    chunks = [original[header + i * record: header + (i + 1) * record] for i in range(m.chunks)]
    i, j = (p % m.chunks for p in pair)
    chunks[i], chunks[j] = chunks[j], chunks[i]
    backups.repo.data_path(m).write_bytes(original[:header] + b"".join(chunks))
    _expect_failure(backups, tmp_path, rf"chunk {min(i, j)} of {m.chunks} failed authentication|truncated")


def test_edited_manifest_is_detected(stored: tuple[Backups, Manifest, bytes], tmp_path: Path) -> None:
    backups, m, _ = stored
    path = backups.repo.root / m.source / f"{m.id}.json"
    doc = json.loads(path.read_text())
    doc["meta"]["entries"] += 1
    path.write_text(json.dumps(doc))
    [v] = backups.verify()
    assert not v.ok and "manifest failed authentication" in (v.error or "")
    with pytest.raises(IntegrityError, match="manifest failed authentication"):
        backups.restore("uploads", to_path=tmp_path / "out")


def test_data_file_of_another_backup_is_detected(stored: tuple[Backups, Manifest, bytes],
                                                 tmp_path: Path) -> None:
    backups, m, original = stored
    [res] = backups.run()
    other = backups.repo.manifests("uploads")[-1]
    assert other.id != m.id
    backups.repo.data_path(other).write_bytes(original)
    results = {v.backup_id: v for v in backups.verify()}
    assert results[m.id].ok and not results[other.id].ok
    assert "files swapped" in (results[other.id].error or "") or "truncated" in (results[other.id].error or "")


def test_wrong_key_is_refused_before_any_output(stored: tuple[Backups, Manifest, bytes], tmp_path: Path,
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
