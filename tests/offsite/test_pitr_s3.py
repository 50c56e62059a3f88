"""PITR with the pgBackRest repository on S3 (repo1-type=s3, the real SeaweedFS over HTTPS with its
self-signed certificate): the WAL leaves the machine, and a restore to a noted time from the bucket holds
exactly the rows committed by then."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shipyard.engine.backup import BackupKey, Backups, run_drills
from shipyard.primitives.pgcluster import PgCluster, find_pg_bin, free_port
from shipyard.primitives.spec.backup import BackupSpec

from .servers import ACCESS, BUCKET, SECRET, SeaweedS3


@pytest.fixture
def world() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="shipyard-pitr-s3-"))
    os.chmod(d, 0o711)  # the cluster's OS user reaches the stanza configuration inside
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def started(datadir: Path, world: Path) -> Iterator[str]:
    sock = world / f"sock-{secrets.token_hex(3)}"
    sock.mkdir()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(sock, "postgres", "postgres")
    port = free_port()
    pg_ctl = str(find_pg_bin() / "pg_ctl")
    subprocess.run([*prefix, pg_ctl, "-D", str(datadir), "-l", str(sock / "log"), "-w", "-o",
                    f"-p {port} -c unix_socket_directories={sock} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/app"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(datadir), "-m", "immediate", "stop"], capture_output=True,
                       timeout=120)


def _ids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM t ORDER BY id").fetchall()]


@pytest.mark.postgres
def test_wal_goes_to_s3_and_restores_to_a_point_in_time(world: Path, s3_server: SeaweedS3) -> None:
    prefix = f"pitr-{secrets.token_hex(3)}"
    cluster = PgCluster()
    cluster.init().start()
    try:
        url = cluster.create_database("app")
        spec = BackupSpec.model_validate({
            "repository": f"s3://{BUCKET}/{prefix}", "rpo": "1m",
            "s3": {"endpoint": s3_server.https_endpoint, "region": "us-east-1", "access_key_secret": "K",
                   "secret_key_secret": "S", "verify_tls": False},
            "sources": [{"kind": "postgres", "name": "db", "url": url, "pitr": True}]})
        key = BackupKey(secrets.token_bytes(32), "test key")
        backups = Backups(spec, key, base_dir=world, secrets={"K": ACCESS, "S": SECRET})
        [first] = backups.run()
        assert not first.ok and "restart" in (first.error or ""), first.error
        cluster.stop()
        cluster.start()
        [full] = backups.run()
        assert full.ok, full.error
        conf = backups.stanza(spec.sources[0]).conf.read_text()  # type: ignore[arg-type]
        assert "repo1-type=s3" in conf and "repo1-storage-verify-tls=n" in conf

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            noted = row[0].isoformat()
            conn.execute("INSERT INTO t SELECT generate_series(11, 25)")
            segment = str(conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0])  # type: ignore[index]
        stanza = backups.stanza(spec.sources[0])  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while not any(a.get("max", "") >= segment for a in stanza.info().get("archive", [])):
            assert time.monotonic() < deadline, "WAL not archived to S3"
            time.sleep(0.3)
        wal = [o["Key"] for o in s3_server.client().list_objects_v2(
            Bucket=BUCKET, Prefix=f"{prefix}/_pgbackrest/db/archive/").get("Contents", [])]
        assert any(segment in k for k in wal), wal  # the segment is in the bucket

        result = backups.restore("db", at=noted, to_path=world / "restored")
        assert result.ok, result.checks
        with started(world / "restored", world) as restored:
            assert _ids(restored) == list(range(1, 11))
        [status] = backups.pitr_status()
        assert status.newest_archived_at is not None and status.repository.startswith("s3://")
        [drill] = run_drills(backups)
        assert drill.ok and drill.rpo_s is not None and drill.rpo_s < 60, drill.checks
        [verified] = backups.verify()
        assert verified.ok and verified.backup_id == "pgbackrest", verified.error
    finally:
        cluster.destroy()
