"""SFTP repositories (``sftp://user@host[:port]/path``) through paramiko: key authentication, and the
server's host key must be in ``known_hosts`` (an unknown or changed key is refused, never accepted).

Objects are written as ``<name>.tmp`` and renamed (POSIX rename), so an object exists whole or not at all.
Each thread gets its own SFTP channel on one SSH connection. A failed operation is retried with backoff
on a fresh connection; what still fails names the repository and the object.
"""

from __future__ import annotations

import errno
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import paramiko

from shipyard.errors import BadInput, NotFound, ShipyardError
from shipyard.primitives.spec.backup import BackupSpec, SftpSettings

T = TypeVar("T")
ATTEMPTS = 4
BACKOFF_S = 0.25


class SftpStore:
    def __init__(self, url: str, settings: SftpSettings, base_dir: Path,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(url)
        if not parts.hostname or not parts.username or not parts.path.strip("/"):
            raise BadInput(f"{url}: expected sftp://user@host[:port]/path")
        self.url = url
        self.host, self.port, self.user = parts.hostname, parts.port or 22, parts.username
        self.root = "/" + parts.path.strip("/")
        self.key_file = self._path(settings.key_file, base_dir)
        self.known_hosts = self._path(settings.known_hosts, base_dir)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._transport: paramiko.Transport | None = None
        self._local = threading.local()
        self._dirs: set[str] = set()

    @staticmethod
    def _path(p: str, base: Path) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    @staticmethod
    def from_spec(url: str, spec: BackupSpec, base_dir: Path) -> SftpStore:
        return SftpStore(url, spec.sftp or SftpSettings(), base_dir)

    # -- connection --------------------------------------------------------------------------------------
    def _connect(self) -> paramiko.Transport:
        with self._lock:
            if self._transport is not None and self._transport.is_active():
                return self._transport
            if not self.key_file.exists():
                raise BadInput(f"{self.url}: backup.sftp.key_file {self.key_file} does not exist")
            client = paramiko.SSHClient()
            try:
                client.load_host_keys(str(self.known_hosts))
            except FileNotFoundError:
                raise BadInput(f"{self.url}: backup.sftp.known_hosts {self.known_hosts} does not exist "
                               f"(add the server's key: ssh-keyscan -p {self.port} {self.host})") from None
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(self.host, self.port, self.user, key_filename=str(self.key_file),
                               allow_agent=False, look_for_keys=False, timeout=10, banner_timeout=10,
                               auth_timeout=10)
            except paramiko.SSHException as exc:
                raise ShipyardError(f"SFTP repository {self.url}: {exc}") from exc
            transport = client.get_transport()
            assert transport is not None
            self._transport = transport
            self._local = threading.local()
            return transport

    def _sftp(self) -> paramiko.SFTPClient:
        transport = self._connect()
        client: paramiko.SFTPClient | None = getattr(self._local, "client", None)
        if client is None or getattr(self._local, "transport", None) is not transport:
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            self._local.client, self._local.transport = client, transport
        return client

    def _retry(self, what: str, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        delay = BACKOFF_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(self._sftp())
            except FileNotFoundError:
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if attempt == ATTEMPTS:
                    raise ShipyardError(f"SFTP repository {self.url}: {what} failed after {ATTEMPTS} attempts: "
                                        f"{exc}") from exc
                with self._lock:
                    if self._transport is not None:
                        self._transport.close()
                    self._transport = None
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- objects -----------------------------------------------------------------------------------------
    def _mkdirs(self, sftp: paramiko.SFTPClient, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d in self._dirs:
                continue
            try:
                sftp.mkdir(d, 0o700)
            except OSError:
                if not stat.S_ISDIR(sftp.stat(d).st_mode or 0):
                    raise
            self._dirs.add(d)

    def put(self, name: str, data: bytes) -> None:
        full = f"{self.root}/{name}"

        def op(sftp: paramiko.SFTPClient) -> None:
            self._mkdirs(sftp, full.rsplit("/", 1)[0])
            with sftp.open(full + ".tmp", "wb") as fh:
                fh.set_pipelined(True)
                fh.write(data)
            sftp.posix_rename(full + ".tmp", full)

        self._retry(f"upload of {name}", op)

    def get(self, name: str) -> bytes:
        def op(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(f"{self.root}/{name}", "rb") as fh:
                fh.prefetch()
                return bytes(fh.read())

        try:
            return self._retry(f"download of {name}", op)
        except FileNotFoundError:
            raise NotFound(f"{self.url}: object {name} is missing") from None

    def _walk(self, sftp: paramiko.SFTPClient, top: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        try:
            entries = sftp.listdir_attr(top)
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.ENOENT or isinstance(exc, FileNotFoundError):
                return out
            raise
        for e in entries:
            path = f"{top}/{e.filename}"
            if stat.S_ISDIR(e.st_mode or 0):
                out.extend(self._walk(sftp, path))
            else:
                out.append((path, int(e.st_size or 0)))
        return out

    def list(self, prefix: str) -> dict[str, int]:
        top = f"{self.root}/{prefix}".rstrip("/")
        found = self._retry(f"listing of {prefix or '/'}", lambda sftp: self._walk(sftp, top))
        cut = len(self.root) + 1
        return {p[cut:]: n for p, n in found if not p.endswith(".tmp")}

    def delete(self, name: str) -> None:
        def op(sftp: paramiko.SFTPClient) -> None:
            try:
                sftp.remove(f"{self.root}/{name}")
            except FileNotFoundError:
                pass

        self._retry(f"deletion of {name}", op)

    def cleanup(self) -> int:
        found = self._retry("listing", lambda sftp: self._walk(sftp, self.root))
        tmp = [p for p, _ in found if p.endswith(".tmp")]
        for p in tmp:
            self._retry(f"deletion of {p}", lambda sftp, p=p: sftp.remove(p))  # type: ignore[misc]
        return len(tmp)

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
            self._transport = None
