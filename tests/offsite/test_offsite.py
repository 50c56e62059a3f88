"""Off-site: copies on SFTP and S3, a drill from the copy when the machine's repository is gone, corruption
of remote objects caught, nothing readable in the bucket, and an S3 server killed in the middle of a backup."""

from __future__ import annotations

import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.engine.backup import Backups, run_drills, store_s3
from shipyard.errors import ShipyardError

from .servers import BUCKET, SeaweedS3, make_tree

TABLE = "zq_private_ledger"


def _sqlite(path: Path, rows: int = 4321) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, v TEXT)")
        db.executemany(f"INSERT INTO {TABLE} VALUES (?, ?)", [(i, f"v{i}") for i in range(rows)])


def _objects(s3: SeaweedS3, prefix: str) -> dict[str, bytes]:
    c = s3.client()
    keys = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
            for o in page.get("Contents", [])]
    return {k: c.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_drill_from_the_offsite_copy_when_the_repository_is_gone(
        tmp_path: Path, sftp_url: str, s3_url: str, remote_backups: Callable[..., Backups]) -> None:
    _sqlite(tmp_path / "app.db")
    make_tree(tmp_path / "uploads")
    sources = [{"kind": "sqlite", "name": "cache", "path": "app.db"},
               {"kind": "files", "name": "uploads", "path": "uploads"}]
    backups = remote_backups(sources, "repo", copy_to=[sftp_url, s3_url], rto="10m", rpo="1h")
    results = backups.run()
    assert all(r.ok and [c.ok for c in r.copies] == [True, True] for r in results), results
    assert {v.repository for v in backups.verify() if v.ok} == {str(tmp_path / "repo"), sftp_url, s3_url}

    shutil.rmtree(tmp_path / "repo")  # the machine's disk is lost; the spec and the key are not
    fresh = remote_backups(sources, "repo", copy_to=[sftp_url, s3_url], rto="10m", rpo="1h")
    drills = run_drills(fresh)
    assert [d.ok for d in drills] == [True, True], [d.checks for d in drills]
    for d in drills:
        assert d.repository == sftp_url
        assert d.rto_s is not None and 0 < d.rto_s < 600
        assert d.rpo_s is not None and 0 <= d.rpo_s < 3600
        assert {"rto", "rpo"} <= {c.name for c in d.checks}
    r = fresh.restore("cache", to_path=tmp_path / "restored.db")
    assert r.ok and any(c.name == f"rows {TABLE}" and c.ok for c in r.checks)


def test_s3_objects_are_private_and_any_flipped_byte_is_caught(
        tmp_path: Path, s3_server: SeaweedS3, s3_url: str, remote_backups: Callable[..., Backups]) -> None:
    _sqlite(tmp_path / "app.db")
    backups = remote_backups([{"kind": "sqlite", "name": "cache", "path": "app.db"}], s3_url)
    assert backups.run()[0].ok
    prefix = s3_url.split("/", 3)[3]
    objects = _objects(s3_server, prefix)
    assert len(objects) >= 3
    for name, data in objects.items():
        for needle in (TABLE.encode(), b":4321", b'"tables"', b"app.db"):
            assert needle not in data and needle not in name.encode(), (name, needle)

    c = s3_server.client()
    rng = random.Random(5)
    for name, data in objects.items():
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 0x10
        c.put_object(Bucket=BUCKET, Key=name, Body=bytes(flipped))
        reader = remote_backups([{"kind": "sqlite", "name": "cache", "path": "app.db"}], s3_url)
        try:
            results = reader.verify()
            assert any(not v.ok for v in results), (name, results)
        except ShipyardError:
            pass  # the configuration object: refused before any backup is looked at
        with pytest.raises(ShipyardError):
            reader.restore("cache", to_path=tmp_path / "out.db")
        assert not (tmp_path / "out.db").exists()
        c.put_object(Bucket=BUCKET, Key=name, Body=data)
    assert all(v.ok for v in remote_backups([{"kind": "sqlite", "name": "cache", "path": "app.db"}],
                                            s3_url).verify())


def test_s3_server_killed_mid_upload(tmp_path: Path, s3_server: SeaweedS3, s3_url: str,
                                     remote_backups: Callable[..., Backups], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_s3, "ATTEMPTS", 2)  # fail within seconds, not after the full backoff
    big = tmp_path / "big"
    big.mkdir()
    rng = random.Random(9)
    for i in range(48):
        (big / f"f{i}.bin").write_bytes(rng.randbytes(1 << 20))
    backups = remote_backups([{"kind": "files", "name": "big", "path": "big"}], s3_url)
    prefix = s3_url.split("/", 3)[3]
    c = s3_server.client()
    out: list[object] = []
    worker = threading.Thread(target=lambda: out.extend(backups.run()))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(c.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/data/").get("Contents", [])) >= 20:
            break
        time.sleep(0.05)
    s3_server.kill()
    worker.join(timeout=120)
    assert not worker.is_alive()
    [failed] = out
    assert not failed.ok and failed.error and f"S3 repository {s3_url}" in failed.error, failed.error  # type: ignore[attr-defined]
    s3_server.start()
    assert backups.list_backups() == []
    left = len(c.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/data/").get("Contents", []))
    assert left >= 20
    # An upload another interrupted writer left: its parts must not outlive the next run either.
    c.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}/data/zz/leftover")
    assert len(c.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])) == 1

    [res] = backups.run()
    assert res.ok, res.error
    assert res.cleaned >= left + 1  # the orphaned blobs and the multipart upload
    assert c.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []
    [m] = backups.list_backups()
    stored = {o["Key"].rsplit("/", 1)[-1] for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=f"{prefix}/data/") for o in page.get("Contents", [])}
    assert stored == {b for b, _ in m.blobs}
    assert backups.verify()[0].ok
