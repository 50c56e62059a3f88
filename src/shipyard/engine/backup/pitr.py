"""Point-in-time recovery for PostgreSQL sources with ``pitr = true``, driven through pgBackRest.

shipyard owns one stanza per source, all under the backup repository::

    <repository>/_pgbackrest/stanzas/<source>/pgbackrest.conf   0600, regenerated on every run
    <repository>/_pgbackrest/stanzas/<source>/cluster.json      what was learnt from the server (no secrets)
    <repository>/_pgbackrest/stanzas/<source>/repo/             repo1-path: backups + WAL archive (encrypted)
    <repository>/_pgbackrest/stanzas/<source>/{log,lock}/

The directory belongs to the cluster's OS user (``postgres``): the server runs ``archive_command`` as that
user, so it must read the configuration (the cipher passphrase is in it; there is no other way to hand it
to ``archive-push``) and write the repository. When shipyard runs as root it runs pgBackRest as that user.
The passphrase is derived from the backup key (HKDF), so the key alone restores everything.
"""

from __future__ import annotations

import base64
import json
import math
import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shipyard.engine.backup.keys import BackupKey
from shipyard.errors import BadInput, ConfigError, NotFound, ShipyardError
from shipyard.primitives.spec.backup import PostgresSource, RetentionSpec

PITR_DIR = "_pgbackrest"  # not a valid source name, so it never meets a source's directory
MAX_ARCHIVE_TIMEOUT = 60.0


def pgbackrest_bin() -> str:
    found = shutil.which("pgbackrest")
    if not found:
        raise ShipyardError("pgbackrest not found; install the Debian package 'pgbackrest' "
                            "(scripts/setup-system.sh does)")
    return found


def cipher_pass(key: BackupKey, source: str) -> str:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"shipyard-backup pgbackrest|" + source.encode()).derive(key.material)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def retention_options(r: RetentionSpec | None) -> dict[str, str]:
    """pgBackRest keeps *full* backups (with their incrementals and the WAL since the oldest kept one).

    Calendar rules and keep_within become time-based retention covering the longest span they ask for
    (keep_daily = 7 → 7 days, keep_weekly = 4 → 28, keep_monthly → 31 per month, keep_yearly → 366 per
    year, keep_hourly → hours / 24, keep_within as is; rounded up to whole days). Only keep_last: that many
    full backups. No policy: nothing expires."""
    if r is None:
        return {}
    spans = [r.keep_within / 86400 if r.keep_within else 0.0, (r.keep_hourly or 0) / 24,
             float(r.keep_daily or 0), 7.0 * (r.keep_weekly or 0), 31.0 * (r.keep_monthly or 0),
             366.0 * (r.keep_yearly or 0)]
    days = math.ceil(max(spans))
    if days:
        return {"repo1-retention-full-type": "time", "repo1-retention-full": str(days)}
    return {"repo1-retention-full-type": "count", "repo1-retention-full": str(r.keep_last or 1)}


def archive_timeout_for(rpo: float | None) -> int:
    """Half the RPO objective, between 10 s and 60 s: an idle-ish server then still ships a WAL segment in
    time (segments are archived when full or after archive_timeout)."""
    return int(MAX_ARCHIVE_TIMEOUT if rpo is None else min(MAX_ARCHIVE_TIMEOUT, max(10.0, rpo / 2)))


def parse_at(text: str) -> datetime:
    """``--at``: ISO 8601 with a UTC offset, e.g. ``2026-11-22 10:00:00+00`` or ``2026-11-22T10:00:00Z``."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"--at {text!r} is not a time; write e.g. '2026-11-22 10:00:00+00' "
                       "(ISO 8601 with a UTC offset)") from None
    if at.tzinfo is None:
        raise BadInput(f"--at {text!r} has no UTC offset; add one, e.g. '{text.strip()}+00' for UTC "
                       "(a point in time must not depend on the machine's time zone)")
    return at


def pg_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S+00")


@dataclass(frozen=True)
class S3Repo:
    """pgBackRest's ``repo1-type=s3``: the WAL archive and backup sets go to the bucket, under the backup
    repository's prefix. ``store`` lists the objects (arrival times for the RPO)."""

    bucket: str
    prefix: str  # "" or "some/prefix/"
    endpoint: str  # https://host[:port] (pgBackRest speaks only HTTPS to S3)
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    path_style: bool
    verify_tls: bool
    ca_file: str | None
    store: Any = field(repr=False, compare=False)

    def options(self, name: str) -> dict[str, str]:
        parts = urlsplit(self.endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"backup.s3.endpoint {self.endpoint!r}: pgBackRest (pitr = true) needs an https:// "
                              "endpoint")
        out = {"repo1-type": "s3", "repo1-path": f"/{self.prefix}{PITR_DIR}/{name}", "repo1-s3-bucket": self.bucket,
               "repo1-s3-endpoint": parts.hostname, "repo1-s3-region": self.region,
               "repo1-s3-key": self.access_key, "repo1-s3-key-secret": self.secret_key,
               "repo1-s3-uri-style": "path" if self.path_style else "host"}
        if parts.port:
            out["repo1-storage-port"] = str(parts.port)
        if not self.verify_tls:
            out["repo1-storage-verify-tls"] = "n"  # a test server's self-signed certificate only
        elif self.ca_file:
            out["repo1-storage-ca-file"] = self.ca_file
        return out


@dataclass(frozen=True)
class ClusterFacts:
    """Learnt from the running server; kept so restores work while it is down."""

    data_dir: str
    port: int
    socket_dir: str
    user: str
    database: str


def _error_lines(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if "ERROR" in ln or "FATAL" in ln]
    return "; ".join(lines)[-1500:] if lines else text.strip()[-1500:]


class Stanza:
    """The pgBackRest stanza of one source: configuration, commands and what the repository holds."""

    def __init__(self, src: PostgresSource, repo_root: Path, key: BackupKey, *,
                 retention: RetentionSpec | None = None, s3: S3Repo | None = None) -> None:
        """``repo_root``: the local backup repository, or (with ``s3``) a local directory for the stanza's
        configuration, logs and locks while the backups and WAL go to the bucket."""
        self.src = src
        self.name = src.name
        self.key = key
        self.retention = retention
        self.s3 = s3
        self.dir = repo_root / PITR_DIR / "stanzas" / src.name
        self.conf = self.dir / "pgbackrest.conf"
        self.repo_path = self.dir / "repo"
        self._facts_path = self.dir / "cluster.json"
        self._data_dir_hint: str | None = None  # before the stanza directory exists, its owner is this one's

    # -- who runs pgBackRest -----------------------------------------------------------------------------
    def run_as(self) -> str | None:
        """The OS user pgBackRest runs as: the cluster's owner when we are root (None: ourselves)."""
        if os.geteuid() != 0:
            return None
        facts = self.facts()
        data_dir = self._data_dir_hint or (facts.data_dir if facts else None)
        for path in (self.dir, Path(data_dir) if data_dir else None):
            try:
                owner = pwd.getpwuid(path.stat().st_uid).pw_name if path else "root"
            except (FileNotFoundError, KeyError):
                owner = "root"
            if owner != "root":
                return owner
        return "postgres"

    def _prefix(self) -> list[str]:
        user = self.run_as()
        return ["runuser", "-u", user, "--"] if user else []

    def can_write(self, path: Path) -> bool:
        user = self.run_as()
        if user is None:
            return os.access(path, os.W_OK | os.X_OK)
        return subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(path), "-a", "-x", str(path)],
                              capture_output=True, timeout=30).returncode == 0

    def own(self, path: Path, mode: int) -> None:
        """``path`` (a fresh directory or file) owned by the user pgBackRest runs as."""
        user = self.run_as()
        if user:
            shutil.chown(path, user, user)
        os.chmod(path, mode)

    # -- configuration -----------------------------------------------------------------------------------
    @property
    def archive_command(self) -> str:
        return f"{shlex.quote(pgbackrest_bin())} {shlex.quote(f'--config={self.conf}')} " \
               f"--stanza={self.name} archive-push %p"

    def facts(self) -> ClusterFacts | None:
        try:
            return ClusterFacts(**json.loads(self._facts_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ShipyardError(f"{self._facts_path}: unreadable ({exc})") from exc

    def render(self, facts: ClusterFacts | None) -> str:
        where = self.s3.options(self.name) if self.s3 else {"repo1-path": str(self.repo_path)}
        glob = {
            **where,
            "repo1-cipher-type": "aes-256-cbc",
            "repo1-cipher-pass": cipher_pass(self.key, self.name),
            **retention_options(self.retention),
            "repo1-bundle": "y",
            "compress-type": "zst",
            "process-max": str(self.src.jobs),
            "start-fast": "y",  # checkpoint at once instead of waiting up to checkpoint_timeout
            "log-path": str(self.dir / "log"),
            "log-level-file": "info",
            "lock-path": str(self.dir / "lock"),
        }
        stanza = {} if facts is None else {"pg1-path": facts.data_dir, "pg1-port": str(facts.port),
                                           "pg1-socket-path": facts.socket_dir, "pg1-user": facts.user,
                                           "pg1-database": facts.database}
        lines = [f"# Written by shipyard for backup source {self.name!r}; rewritten on every run.", "[global]"]
        lines += [f"{k}={v}" for k, v in glob.items()]
        lines += ["", f"[{self.name}]", *(f"{k}={v}" for k, v in stanza.items())]
        return "\n".join(lines) + "\n"

    def prepare(self, facts: ClusterFacts | None = None) -> bool:
        """Creates the stanza directory and writes the configuration (atomically, 0600, owned by the
        cluster's user). ``facts`` None keeps what the last run learnt. True when the content changed."""
        if facts is None:
            facts = self.facts()
        else:
            self._data_dir_hint = facts.data_dir
        for d in (self.dir.parent.parent, self.dir.parent):
            if not d.exists():
                d.mkdir()
                os.chmod(d, 0o711)  # the cluster's user passes through to its stanza directory
        if not self.dir.exists():
            self.dir.mkdir()
            self.own(self.dir, 0o700)
        for sub in ("log", "lock"):
            if not (self.dir / sub).exists():
                (self.dir / sub).mkdir()
                self.own(self.dir / sub, 0o700)
        if not self.can_write(self.dir):
            raise ConfigError(f"the OS user {self.run_as() or 'running shipyard'!r} (who runs pgBackRest and the "
                              f"server's archive_command) cannot write {self.dir}: make its parent directories "
                              "traversable (chmod o+x) or put the backup repository elsewhere")
        text = self.render(facts)
        old = self.conf.read_text() if self.conf.exists() else None
        if old != text:
            tmp = self.conf.with_name("pgbackrest.conf.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            self.own(tmp, 0o600)
            os.replace(tmp, self.conf)
        if facts is not None:
            body = json.dumps(asdict(facts), indent=1) + "\n"
            if not self._facts_path.exists() or self._facts_path.read_text() != body:
                self._facts_path.write_text(body)
        return old != text

    # -- commands ----------------------------------------------------------------------------------------
    def pgbackrest(self, *args: str, timeout: float = 3600, env: dict[str, str] | None = None,
                   what: str | None = None) -> subprocess.CompletedProcess[str]:
        if not self.conf.exists():
            raise NotFound(f"source {self.name!r} has no pgBackRest configuration yet ({self.conf}); "
                           "run `shipyard backup run` first")
        cmd = [*self._prefix(), pgbackrest_bin(), f"--config={self.conf}", f"--stanza={self.name}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.dir)
        except subprocess.TimeoutExpired:
            raise ShipyardError(f"pgBackRest {args[0]} for source {self.name!r} did not finish within "
                                f"{timeout:.0f}s") from None
        if proc.returncode != 0:
            raise ShipyardError(f"pgBackRest {what or args[0]} for source {self.name!r} failed "
                                f"(exit {proc.returncode}): {_error_lines(proc.stderr + proc.stdout)}")
        return proc

    def info(self) -> dict[str, Any]:
        """``pgbackrest info --output=json`` for this stanza ({} when nothing was configured yet)."""
        if not self.conf.exists():
            return {}
        out = json.loads(self.pgbackrest("info", "--output=json", timeout=120).stdout or "[]")
        stanza: dict[str, Any] = out[0] if out else {}
        return stanza

    def verify(self) -> tuple[bool, str]:
        """``pgbackrest verify``: checksums of every backup file and archived WAL segment. It exits 0 either
        way, so the verdict is read from its report ("status: ok")."""
        out = self.pgbackrest("verify", "--output=text", "--verbose", timeout=24 * 3600).stdout
        lines = [ln.strip() for ln in out.splitlines()]
        ok = "status: ok" in lines
        summary = [ln for ln in lines if ln.startswith(("archiveId:", "backup:"))]
        bad = [ln for ln in summary if "status: valid" not in ln and "total WAL checked" not in ln]
        wal_bad = [ln for ln in lines if ln.startswith("missing:") and ln != "missing: 0, checksum invalid: 0, "
                   "size invalid: 0, other: 0"]
        detail = "; ".join(bad + wal_bad) if not ok else "; ".join(summary)
        return ok, detail or out.strip()[-800:]

    @property
    def location(self) -> str:
        """Where the backup sets and the WAL archive are (for messages)."""
        if self.s3:
            return f"s3://{self.s3.bucket}/{self.s3.prefix}{PITR_DIR}/{self.name}"
        return str(self.repo_path)

    def stanza_exists(self) -> bool:
        if self.s3:
            return bool(self.s3.store.list(f"{PITR_DIR}/{self.name}/backup/{self.name}/backup.info"))
        return (self.repo_path / "backup" / self.name / "backup.info").exists()

    def newest_archived_at(self, info: dict[str, Any]) -> float | None:
        """When the newest WAL segment reached the archive: everything committed before its switch is
        restorable, so this is the newest restorable point (RPO is measured from it)."""
        newest: float | None = None
        for arch in info.get("archive", []):
            seg = arch.get("max")
            if not seg:
                continue
            if self.s3:
                found = self.s3.store.modified(f"{PITR_DIR}/{self.name}/archive/{self.name}/{arch['id']}/"
                                               f"{seg[:16]}/{seg}-")
                newest = max([newest or 0.0, *found.values()]) if found else newest
                continue
            folder = self.repo_path / "archive" / self.name / arch["id"] / seg[:16]
            for path in folder.glob(f"{seg}-*"):
                newest = max(newest or 0.0, path.stat().st_mtime)
        return newest

    def restorable_until(self, info: dict[str, Any], now: float) -> float | None:
        """The newest restorable point: ``now`` when the source has written nothing since its newest archived
        segment (an idle server ships no segments, yet nothing is missing), else that segment's arrival."""
        newest = self.newest_archived_at(info)
        archived = max((a["max"] for a in info.get("archive", []) if a.get("max")), default=None)
        if newest is not None and archived is not None and caught_up(self.src, archived):
            return now
        return newest


# The first page of a segment starts with a 40-byte long header (SizeOfXLogLongPHD): an insert position no
# further in than that means no record was written since the previous segment was switched out.
_SEGMENT_HEADER = 40
_CAUGHT_UP = """
SELECT o.file_offset, pg_walfile_name(l - o.file_offset)
FROM pg_current_wal_insert_lsn() AS l, pg_walfile_name_offset(l) AS o
"""


def caught_up(src: PostgresSource, archived: str) -> bool:
    """True when the source is reachable and every WAL record it wrote is in segments up to ``archived``."""
    try:
        with psycopg.connect(src.url, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute(_CAUGHT_UP).fetchone()
    except psycopg.Error:
        return False  # down, a standby, or too old for pg_lsn arithmetic: no claim
    return row is not None and int(row[0]) <= _SEGMENT_HEADER and str(row[1]) <= archived


def backups_of(info: dict[str, Any]) -> list[dict[str, Any]]:
    return list(info.get("backup", []))
