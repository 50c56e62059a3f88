"""PITR through pgBackRest against a real cluster: set-up (with the restart it needs), full and incremental
backups, restore to a noted time into a new directory and over the original, list, drill, bad input."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shipyard.engine.backup import BackupKey, Backups, run_drills
from shipyard.engine.backup.pitr import Stanza, archive_timeout_for, parse_at, retention_options
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.pgcluster import PgCluster, find_pg_bin, free_port
from shipyard.primitives.spec.backup import BackupSpec, PostgresSource, RetentionSpec


def wait_archived(stanza: Stanza, segment: str, timeout: float = 60) -> None:
    """Waits until ``segment`` is in the archive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(a.get("max", "") >= segment for a in stanza.info().get("archive", [])):
            return
        time.sleep(0.2)
    raise ShipyardError(f"WAL segment {segment} was not archived within {timeout:.0f}s")


# `make test` installs pgBackRest (scripts/setup-system.sh); without it these tests fail, they are not skipped.


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory the cluster's OS user can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="shipyard-pitr-test-"))
    os.chmod(d, 0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def rows(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM t ORDER BY id").fetchall()]


@contextlib.contextmanager
def start_datadir(datadir: Path, world: Path) -> Iterator[str]:
    """Our own start of a restored data directory (not shipyard's), on a free port; yields the app's URL."""
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


def promoted(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return
        time.sleep(0.1)
    raise AssertionError("still in recovery")


def test_pitr_restores_exactly_the_rows_committed_by_the_noted_time(world: Path, key: BackupKey) -> None:
    cluster = PgCluster()
    cluster.init().start()  # archive_mode is off, as on a fresh server
    try:
        url = cluster.create_database("app")
        spec = BackupSpec.model_validate({
            "repository": str(world / "repo"), "rpo": "1m", "rto": "5m", "retention": {"keep_daily": 7},
            "sources": [{"kind": "postgres", "name": "db", "url": url, "pitr": True,
                         "check_sql": ["SELECT count(*) = 25 FROM t"]}]})
        backups = Backups(spec, key, base_dir=world)

        # Someone else's archiver is never replaced.
        cluster.psql("ALTER SYSTEM SET archive_command = 'cp %p /elsewhere/%f'; ")
        cluster.psql("SELECT pg_reload_conf()")
        [other] = backups.run()
        assert not other.ok and "will not replace another archiver" in (other.error or "")
        cluster.psql("ALTER SYSTEM RESET archive_command")
        cluster.psql("SELECT pg_reload_conf()")

        [first] = backups.run()
        assert not first.ok and "archive_mode = on" in (first.error or "") and "restart" in (first.error or "")
        cluster.stop()
        cluster.start()

        [full] = backups.run()
        assert full.ok, full.error
        assert full.pitr is not None and full.pitr["type"] == "full" and full.backup_id
        stanza = backups.stanza(spec.sources[0])  # type: ignore[arg-type]
        assert stat.S_IMODE(stanza.conf.stat().st_mode) == 0o600
        text = stanza.conf.read_text()
        assert "repo1-cipher-type=aes-256-cbc" in text and "repo1-retention-full-type=time" in text
        assert f"pg1-path={cluster.datadir}" in text
        assert cluster.psql("SHOW archive_timeout").strip() == "30s"  # half the 1m RPO

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            noted = row[0].isoformat()  # the server's clock, after the first rows committed
            conn.execute("INSERT INTO t SELECT generate_series(11, 25)")
        [incr] = backups.run()
        assert incr.ok and incr.pitr is not None and incr.pitr["type"] == "incr", incr.error
        quiet = cluster.psql("SELECT now()").strip()  # nothing commits after this
        segment = cluster.psql("SELECT pg_walfile_name(pg_switch_wal())").strip()
        wait_archived(stanza, segment)

        # Bad times are refused before anything is restored.
        for at, says in [("2000-01-01 00:00:00+00", "before the earliest restorable point"),
                         ("2999-01-01 00:00:00+00", "in the future")]:
            with pytest.raises(BadInput, match=says):
                backups.restore("db", at=at, to_path=world / "never")
        assert not (world / "never").exists()
        with pytest.raises(BadInput, match="--to-path"):
            backups.restore("db", at=noted, to_url=url)
        wrong = Backups(spec, BackupKey(secrets.token_bytes(32), "other key"), base_dir=world)
        with pytest.raises(BadInput, match="wrong backup key"):
            wrong.restore("db", at=noted, to_path=world / "never")

        result = backups.restore("db", at=noted, to_path=world / "restored")
        assert result.ok and result.backup_id == full.backup_id, result.checks
        assert "promoted" in {c.name: c.detail for c in result.checks}["recovery"]
        with start_datadir(world / "restored", world) as restored:
            assert rows(restored) == list(range(1, 11))

        # No commit after `quiet` in the archive: PostgreSQL alone would stop with "recovery ended before
        # the target"; the end of the archive (which reaches past `quiet`) is that state.
        end = backups.restore("db", at=quiet, to_path=world / "restored-end")
        assert end.ok and end.backup_id == incr.backup_id, end.checks
        with start_datadir(world / "restored-end", world) as restored:
            assert rows(restored) == list(range(1, 26))

        [status] = backups.pitr_status()
        assert [b["type"] for b in status.backups] == ["full", "incr"] and status.error is None
        assert status.archive_max is not None and status.archive_max >= segment
        assert status.restorable_from is not None and status.newest_archived_at is not None

        [drill] = run_drills(backups)  # newest backup + every archived segment: all 25 rows
        assert drill.ok, drill.checks
        assert drill.rpo_s is not None and drill.rpo_s < 60 and drill.rto_s is not None
        assert {"restore", "recovery", "sql SELECT count(*) = 25 FROM t", "rto", "rpo"} <= {
            c.name for c in drill.checks}

        # Over the original: refused while it runs, then the same time on the source itself.
        with pytest.raises(Exception, match="stop it first"):
            backups.restore("db", at=noted, replace=True)
        cluster.stop()
        over = backups.restore("db", at=noted, replace=True)
        assert over.target == str(cluster.datadir) and "new timeline" in (over.note or "")
        cluster.start()
        promoted(url)
        assert rows(url) == list(range(1, 11))

        [verified] = backups.verify()
        assert verified.ok and verified.backup_id == "pgbackrest", verified.error
        bundles = (stanza.repo_path / "backup" / "db" / (full.backup_id or "") / "bundle").iterdir()
        biggest = max(bundles, key=lambda p: p.stat().st_size)
        with open(biggest, "r+b") as fh:  # one flipped bit in the full backup
            fh.seek(biggest.stat().st_size // 2)
            byte = fh.read(1)[0]
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte ^ 1]))
        [bad] = backups.verify()
        assert not bad.ok and "checksum invalid: 1" in (bad.error or ""), bad
    finally:
        cluster.destroy()


def test_at_is_checked_and_only_for_pitr_sources(tmp_path: Path, key: BackupKey) -> None:
    for text, says in [("yesterday", "not a time"), ("2026-11-22 10:00:00", "no UTC offset")]:
        with pytest.raises(BadInput, match=says):
            parse_at(text)
    assert parse_at("2026-11-22T10:00:00Z") == parse_at("2026-11-22 11:00:00+01")
    (tmp_path / "app.db").write_bytes(b"")
    spec = BackupSpec.model_validate({"repository": str(tmp_path / "repo"),
                                      "sources": [{"kind": "sqlite", "name": "cache", "path": "app.db"}]})
    with pytest.raises(BadInput, match="set pitr = true"):
        Backups(spec, key, base_dir=tmp_path).restore("cache", at="2026-11-22 10:00:00+00", to_path=tmp_path / "x")


def test_restore_at_cli_rejects_a_bad_time_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("""
[app]
name = "svc"
run = "python3 app.py"
[environments.staging]
port = 8000
[environments.staging.backup]
repository = "backups"
[[environments.staging.backup.sources]]
name = "db"
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:1/app"
pitr = true
""")
    keyfile = tmp_path / ".shipyard" / "backup.key"
    keyfile.parent.mkdir()
    keyfile.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    keyfile.chmod(0o600)
    env = {**os.environ, "SHIPYARD_MASTER_KEY": base64.b64encode(b"m" * 32).decode()}
    r = subprocess.run([sys.executable, "-m", "shipyard", "backup", "restore", "--env", "staging", "--source", "db",
                        "--at", "22/11/2026 10:00", "--to-path", "out"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--at '22/11/2026 10:00' is not a time" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("policy", "expected"), [
    ({"keep_last": 3}, {"repo1-retention-full-type": "count", "repo1-retention-full": "3"}),
    ({"keep_daily": 7, "keep_weekly": 4}, {"repo1-retention-full-type": "time", "repo1-retention-full": "28"}),
    ({"keep_within": "36h", "keep_last": 2}, {"repo1-retention-full-type": "time", "repo1-retention-full": "2"}),
    ({"keep_hourly": 24}, {"repo1-retention-full-type": "time", "repo1-retention-full": "1"}),
])
def test_retention_maps_to_pgbackrest(policy: dict[str, object], expected: dict[str, str]) -> None:
    assert retention_options(RetentionSpec.model_validate(policy)) == expected
    assert retention_options(None) == {}


def test_archive_timeout_follows_the_rpo() -> None:
    assert [archive_timeout_for(r) for r in (None, 15.0, 60.0, 900.0)] == [60, 10, 30, 60]


def test_pitr_source_settings_need_no_server() -> None:
    src = PostgresSource.model_validate({"kind": "postgres", "name": "db", "url": "postgresql://x/y", "pitr": True,
                                         "data_dir": "/var/lib/postgresql/15/main", "full_every": "1d"})
    assert src.full_every == 86400 and src.data_dir == "/var/lib/postgresql/15/main"
    plain = PostgresSource.model_validate({"kind": "postgres", "name": "db", "url": "postgresql://x/y"})
    assert plain.full_every == 7 * 86400 and plain.data_dir is None and not plain.pitr
