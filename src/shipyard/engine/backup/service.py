"""``Backups``: run, list, verify, restore and forget one environment's backups (results, no store)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

from shipyard.engine.backup import pitr_restore, pitr_setup
from shipyard.engine.backup.keys import BackupKey
from shipyard.engine.backup.manifest import Manifest
from shipyard.engine.backup.pipeline import DEFAULT_AVG, EncryptingSink, decrypted, drain
from shipyard.engine.backup.pitr import S3Repo, Stanza, backups_of, parse_at
from shipyard.engine.backup.repository import Repository, new_backup_id
from shipyard.engine.backup.results import (
    BackupVerifyResult,
    CopyResult,
    ForgetResult,
    PitrStatus,
    RestoreResult,
    RunResult,
)
from shipyard.engine.backup.retention import apply_policy
from shipyard.engine.backup.sources import files, mysql, postgres, redis, sqlite
from shipyard.engine.backup.sources.base import DumpInfo, RestoreCheck, RestoreTarget
from shipyard.engine.backup.store_s3 import S3Store, credentials
from shipyard.engine.backup.stores import LocalStore, open_store
from shipyard.errors import BadInput, IntegrityError, NotFound, Refused, ShipyardError
from shipyard.primitives.clock import Clock, SystemClock
from shipyard.primitives.spec.backup import (
    BackupSpec,
    FilesSource,
    MysqlSource,
    PostgresSource,
    RedisSource,
    SqliteSource,
)

AnySource = PostgresSource | SqliteSource | FilesSource | MysqlSource | RedisSource
_URL_SCHEMES = {"postgres": ("postgresql://", "postgres://"), "mysql": ("mysql://", "mariadb://"),
                "redis": ("redis://", "rediss://", "unix://")}

__all__ = ["AnySource", "Backups", "RunResult"]  # results: engine.backup.results


def _label(repo: Repository, m: Manifest) -> str:
    return f"backup {m.id} of source {m.source!r} in {repo.url}"


class Backups:
    """One environment's backups. Paths in the spec are relative to ``base_dir`` (the project); ``secrets``
    are the environment's (S3 credentials are read from them); ``chunk_size`` is the average chunk."""

    def __init__(self, spec: BackupSpec, key: BackupKey, *, base_dir: Path, clock: Clock | None = None,
                 chunk_size: int = DEFAULT_AVG, secrets: Mapping[str, str] | None = None,
                 lock_dir: Path | None = None) -> None:
        self.spec = spec
        self.key = key
        self.base_dir = base_dir
        self.clock: Clock = clock or SystemClock()
        self.chunk_size = chunk_size
        self.secrets = dict(secrets or {})
        locks = lock_dir or base_dir / ".shipyard" / "backup-locks"
        self.repo = Repository(open_store(spec.repository, spec, self.secrets, base_dir), key, locks)
        self.copies = [Repository(open_store(p, spec, self.secrets, base_dir), key, locks) for p in spec.copy_to]
        self._reading: Repository | None = None

    @property
    def source_repo(self) -> Repository:
        """Where restores and drills read: the repository or, when it is gone (the machine was lost) or
        unreachable, the first ``copy_to`` site that holds one."""
        if self._reading is None:
            self._reading = self.repo
            if not self.repo.exists():
                self._reading = next((c for c in self.copies if c.exists()), self.repo)
        return self._reading

    def path(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else self.base_dir / q

    def sources(self, only: str | None = None) -> list[AnySource]:
        return [self.spec.source(only)] if only else list(self.spec.sources)

    def stanza(self, src: PostgresSource) -> Stanza:
        store = self.repo.store
        if isinstance(store, LocalStore):
            return Stanza(src, store.root, self.key, retention=self.spec.retention)
        if not isinstance(store, S3Store) or self.spec.s3 is None:
            raise BadInput(f"source {src.name!r}: pitr needs a local or s3:// repository (the packaged pgBackRest "
                           "has no SFTP repositories)")
        s3 = self.spec.s3
        access, secret = credentials(s3, self.secrets)
        remote = S3Repo(store.bucket, store.prefix, s3.endpoint or f"https://s3.{s3.region}.amazonaws.com",
                        s3.region, access, secret, s3.path_style, s3.verify_tls, s3.ca_file, store)
        # Configuration, logs and locks stay on this machine (the cluster's user must reach them).
        local = self.base_dir / ".shipyard-pgbackrest" / hashlib.sha256(store.url.encode()).hexdigest()[:12]
        for d in (local.parent, local):
            if not d.exists():
                d.mkdir(parents=True)
                d.chmod(0o711)
        return Stanza(src, local, self.key, retention=self.spec.retention, s3=remote)

    # -- run ---------------------------------------------------------------------------------------------
    def run(self, only: str | None = None) -> list[RunResult]:
        self.repo.check_key(create=True)
        results = []
        for src in self.sources(only):
            results.append(self._run_one(src))
        return results

    def url_of(self, src: MysqlSource | RedisSource) -> str:
        if src.url is not None:
            return src.url
        value = self.secrets.get(src.url_secret or "")
        if not value:
            raise BadInput(f"backup source {src.name!r}: secret {src.url_secret} (url_secret) is not set for this "
                           "environment")
        return value

    def _dump(self, src: AnySource, sink: EncryptingSink) -> DumpInfo:
        if isinstance(src, PostgresSource):
            return postgres.dump(src, sink, self.clock)
        if isinstance(src, MysqlSource):
            return mysql.dump(src.name, self.url_of(src), sink, self.clock)
        if isinstance(src, RedisSource):
            return redis.dump(src.name, self.url_of(src), sink, self.clock)
        if isinstance(src, SqliteSource):
            return sqlite.dump(src, self.path(src.path), sink, self.clock)
        return files.dump(src, self.path(src.path), sink, self.clock)

    def _run_one(self, src: AnySource) -> RunResult:
        if isinstance(src, PostgresSource) and src.pitr:
            return self._run_pitr(src)
        started, t0 = self.clock.time(), self.clock.monotonic()
        try:
            with self.repo.locked(f"back up {src.name!r}"):
                cleaned = self.repo.collect()
                m = self._write(src, started, t0)
        except (ShipyardError, OSError) as exc:
            return RunResult(src.name, src.kind, False, started, self.clock.monotonic() - t0, error=str(exc))
        copies = tuple(self._replicate(src.name, m))
        return RunResult(src.name, src.kind, all(c.ok for c in copies), started, self.clock.monotonic() - t0,
                         m.id, m.plain_size, m.stored_size, None, copies, cleaned)

    def _run_pitr(self, src: PostgresSource) -> RunResult:
        """pgBackRest instead of the pg_dump stream: physical full/incr backups + the WAL archive give every
        point in time; a logical dump as well would double the load for nothing PITR cannot restore."""
        started, t0 = self.clock.time(), self.clock.monotonic()
        try:
            with self.repo.locked(f"back up {src.name!r}"):
                b = pitr_setup.backup(self.stanza(src), self.clock, self.spec.rpo)
        except (ShipyardError, OSError) as exc:
            return RunResult(src.name, src.kind, False, started, self.clock.monotonic() - t0, error=str(exc))
        notes = list(b.notes)
        if self.copies:
            notes.append("copy_to is not applied to pgBackRest repositories: put the repository on s3:// to "
                         "keep the WAL archive off the machine")
        return RunResult(src.name, src.kind, True, started, self.clock.monotonic() - t0, b.label, b.size,
                         b.stored, pitr={"engine": "pgbackrest", "type": b.type, "notes": notes})

    def _write(self, src: AnySource, started: float, t0: float) -> Manifest:
        """Blobs first (only those the repository lacks), the snapshot last. A failure leaves blobs no
        snapshot names: the next run's ``collect`` removes them."""
        bid = new_backup_id(started)
        sink = EncryptingSink(self.repo, self.repo.blobs(), avg_size=self.chunk_size)
        try:
            info = self._dump(src, sink)
        except BaseException:
            sink.abort()
            raise
        stats = sink.close()
        m = Manifest(id=bid, source=src.name, kind=src.kind, created_at=started, snapshot_time=info.snapshot_time,
                     finished_at=self.clock.time(), key_id=self.key.key_id, compression="zstd",
                     plain_size=stats.plain_size, plain_sha256=stats.plain_sha256, stored_size=stats.stored_size,
                     total_stored=stats.total_stored, blobs=stats.blobs, meta=info.meta, tools=info.tools,
                     timings={"total_s": round(self.clock.monotonic() - t0, 3)})
        self.repo.commit(m)
        return m

    def _replicate(self, source: str, newest: Manifest) -> Iterator[CopyResult]:
        """Copies every backup of ``source`` the second sites lack, then re-verifies them there."""
        for dst in self.copies:
            try:
                dst.check_key(create=True)
                with dst.locked(f"copy to {dst.url}"):
                    dst.collect()
                    have = {m.id for m in dst.manifests(source)}
                    blobs = dst.blobs()
                    for m in self.repo.manifests(source):
                        if m.id not in have:
                            dst.copy_from(self.repo, m, blobs)
                            self._verify_one(dst, dst.load(source, m.id), None, random.Random())
                yield CopyResult(dst.url, True)
            except (ShipyardError, OSError) as exc:
                yield CopyResult(dst.url, False, str(exc))

    # -- list --------------------------------------------------------------------------------------------
    def list_backups(self, only: str | None = None) -> list[Manifest]:
        if only:
            self.spec.source(only)
        return self.repo.manifests(only)

    def pitr_status(self, only: str | None = None) -> list[PitrStatus]:
        out: list[PitrStatus] = []
        for src in self.sources(only):
            if not (isinstance(src, PostgresSource) and src.pitr):
                continue
            stanza = self.stanza(src)
            if not stanza.conf.exists():
                out.append(PitrStatus(src.name, stanza.location, error="no pgBackRest backup yet"))
                continue
            try:
                info = stanza.info()
            except ShipyardError as exc:
                out.append(PitrStatus(src.name, stanza.location, error=str(exc)))
                continue
            sets = tuple({"label": b["label"], "type": b["type"], "start": float(b["timestamp"]["start"]),
                          "stop": float(b["timestamp"]["stop"]), "size": int(b["info"]["size"]),
                          "stored": int(b["info"]["repository"]["delta"])} for b in backups_of(info))
            archives = info.get("archive", [])
            status = info.get("status", {})
            out.append(PitrStatus(src.name, stanza.location, sets,
                                  min((a["min"] for a in archives if a.get("min")), default=None),
                                  max((a["max"] for a in archives if a.get("max")), default=None),
                                  stanza.newest_archived_at(info), stanza.restorable_until(info, self.clock.time()),
                                  None if status.get("code", 0) == 0 else str(status.get("message"))))
        return out

    def newest(self, source: str) -> Manifest | None:
        found = self.source_repo.manifests(source)
        return found[-1] if found else None

    # -- verify ------------------------------------------------------------------------------------------
    def verify(self, only: str | None = None, subset: float | None = None,
               rng: random.Random | None = None) -> list[BackupVerifyResult]:
        """Full: every manifest, checksum and chunk. ``subset`` (0..1]: manifests and sizes of all, and a
        random fraction of the chunks decrypted (restic's ``--read-data-subset``)."""
        rng = rng or random.Random()
        out = self._verify_pitr(only)
        for repo in [self.repo, *self.copies]:
            repo.check_key(create=False)  # a wrong key is refused (exit 2), not reported per backup
            try:
                found, problems = repo.scan(only)
                blobs = repo.blobs()
            except ShipyardError as exc:
                out.append(BackupVerifyResult(repo.url, only or "*", "config", False, 0, 0, str(exc)))
                continue
            out.extend(BackupVerifyResult(repo.url, only or "*", bid, False, 0, 0, err) for bid, err in problems)
            for m in found:
                try:
                    out.append(self._verify_one(repo, m, subset, rng, blobs))
                except ShipyardError as exc:
                    out.append(BackupVerifyResult(repo.url, m.source, m.id, False, m.chunks, 0, str(exc)))
        return out

    def _verify_pitr(self, only: str | None) -> list[BackupVerifyResult]:
        """PITR sources: ``pgbackrest verify`` over all their backup sets and WAL (no subset sampling)."""
        out: list[BackupVerifyResult] = []
        for src in self.sources(only):
            if not (isinstance(src, PostgresSource) and src.pitr) or not self.stanza(src).conf.exists():
                continue
            try:
                ok, detail = self._pitr_ready(src).verify()
                out.append(BackupVerifyResult(self.stanza(src).location, src.name, "pgbackrest", ok, 0, 0,
                                        None if ok else detail, detail))
            except ShipyardError as exc:
                out.append(BackupVerifyResult(self.stanza(src).location, src.name, "pgbackrest", False, 0, 0,
                                        str(exc)))
        return out

    def _verify_one(self, repo: Repository, m: Manifest, subset: float | None, rng: random.Random,
                    blobs: dict[str, int] | None = None) -> BackupVerifyResult:
        """Every blob present with its size; then all decrypted (with the stream's SHA-256) or a sample."""
        label = _label(repo, m)
        have = repo.blobs() if blobs is None else blobs
        for i, (blob_id, size) in enumerate(m.blobs):
            if have.get(blob_id) != size:
                state = "missing" if blob_id not in have else f"{have[blob_id]} bytes, the manifest says {size}"
                raise IntegrityError(f"{label}: blob {i} of {m.chunks} ({blob_id[:12]}) is {state}")
        if subset is None:
            drain(decrypted(repo, m, label=label))
            return BackupVerifyResult(repo.url, m.source, m.id, True, m.chunks, m.chunks)
        n = min(max(1, math.ceil(subset * m.chunks)), m.chunks)
        for index in sorted(rng.sample(range(m.chunks), n)):
            repo.read_blob(m.blobs[index][0], label)
        return BackupVerifyResult(repo.url, m.source, m.id, True, m.chunks, n)

    # -- restore -----------------------------------------------------------------------------------------
    def pick(self, source: str, backup_id: str | None) -> Manifest:
        self.spec.source(source)
        repo = self.source_repo
        repo.check_key(create=False)
        if backup_id:
            return repo.load(source, backup_id)
        found, problems = repo.scan(source)
        m = found[-1] if found else None
        # Backup ids sort by time: an unreadable snapshot newer than the newest readable one may be the
        # newest backup of this source, so restoring an older one without being asked would be a surprise.
        newer = [err for bid, err in problems if m is None or bid > m.id]
        if newer:
            raise IntegrityError(f"{newer[0]} (pass --backup ID to restore an older backup)")
        if m is None:
            raise NotFound(f"no backups of source {source!r} in {repo.url}")
        return m

    def restore(self, source: str, *, backup_id: str | None = None, to_url: str | None = None,
                to_path: Path | None = None, replace: bool = False, at: str | None = None) -> RestoreResult:
        """To a new target (``to_url`` / ``to_path``) or, with ``replace``, over the original. The key and
        the manifest are checked before anything is written. PITR sources restore through pgBackRest, to
        the time ``at`` or to the end of the WAL archive (a pg_dump backup id still restores that dump)."""
        src = self.spec.source(source)
        when = parse_at(at) if at is not None else None
        if isinstance(src, PostgresSource) and src.pitr and not (
                backup_id and any(m.id == backup_id for m in self.source_repo.manifests(source))):
            return self._restore_pitr(src, backup_id, to_url, to_path, replace, when)
        if when is not None and isinstance(src, PostgresSource) and src.pitr:
            raise BadInput(f"backup {backup_id} is a pg_dump backup: it restores as it was, without --at")
        if when is not None:
            raise BadInput(f"--at needs point-in-time recovery: set pitr = true on source {source!r} "
                           "(PostgreSQL only)")
        if isinstance(src, PostgresSource | MysqlSource) and to_path is not None:
            raise BadInput(f"source {source!r} is {src.kind}: restore it with --to {_URL_SCHEMES[src.kind][0]}...")
        if to_url is not None and not to_url.startswith(_URL_SCHEMES.get(src.kind, ("-",))):
            raise BadInput(f"source {source!r} is {src.kind}: restore it with "
                           + (f"--to {_URL_SCHEMES[src.kind][0]}..." if src.kind in _URL_SCHEMES else "--to-path DIR"))
        m = self.pick(source, backup_id)
        t0 = self.clock.monotonic()
        checks, where = self.restore_into(src, m, RestoreTarget(url=to_url, path=to_path, replace=replace))
        return RestoreResult(source, m.id, where, self.clock.monotonic() - t0, tuple(checks))

    def _restore_pitr(self, src: PostgresSource, label: str | None, to_url: str | None, to_path: Path | None,
                      replace: bool, at: datetime | None) -> RestoreResult:
        if to_url is not None:
            raise BadInput(f"source {src.name!r} is restored by pgBackRest as a whole cluster: use --to-path DIR "
                           "(a new data directory, checked by starting it) or --yes to restore over the original")
        t0 = self.clock.monotonic()
        if to_path is not None:
            r = self.pitr_restore_into(src, to_path.absolute(), at=at, label=label)
        elif replace:
            r = pitr_restore.restore_over_original(self._pitr_ready(src), at=at, label=label, now=self.clock.time())
        else:
            raise Refused(f"restoring over the original cluster of source {src.name!r} needs --yes")
        return RestoreResult(src.name, r.label, r.target, self.clock.monotonic() - t0, r.checks, r.note)

    def _pitr_ready(self, src: PostgresSource) -> Stanza:
        """The stanza with its configuration rewritten from the key (a new machine has only the repository)."""
        self.repo.check_key(create=False)
        stanza = self.stanza(src)
        if not (stanza.stanza_exists() if stanza.s3 else stanza.dir.exists()):
            raise NotFound(f"no pgBackRest backups of source {src.name!r} in {self.repo.url}")
        stanza.prepare()
        return stanza

    def pitr_restore_into(self, src: PostgresSource, dest: Path, *, at: datetime | None = None,
                          label: str | None = None, user_sql: bool = False) -> pitr_restore.PitrRestored:
        return pitr_restore.restore_to_dir(self._pitr_ready(src), dest, at=at, label=label, now=self.clock.time(),
                                           user_sql=user_sql)

    def restore_into(self, src: AnySource, m: Manifest, target: RestoreTarget,
                      user_sql: bool = False) -> tuple[list[RestoreCheck], str]:
        blocks = decrypted(self.source_repo, m, label=_label(self.source_repo, m))
        if isinstance(src, PostgresSource):
            postgres.restore(src, blocks, target)
            url = target.url or src.url
            return postgres.check(src, url, m.meta.get("tables", {}), user_sql=user_sql), url.rsplit("@", 1)[-1]
        if isinstance(src, MysqlSource):
            u = mysql.restore(src.name, self.url_of(src), blocks, target)
            return mysql.check(u, m.meta.get("tables", {})), u.shown()
        if isinstance(src, RedisSource):
            where, counts = redis.restore(src.name, self.url_of(src), blocks, target)
            live = None if target.path is not None else where
            return redis.check(live, counts, m.meta.get("keys", {})), where.rsplit("@", 1)[-1]
        if isinstance(src, SqliteSource):
            path = sqlite.restore(src, self.path(src.path), blocks, target)
            return sqlite.check(path, m.meta.get("tables", {})), str(path)
        root = files.restore(src, self.path(src.path), blocks, target)
        return files.check(root, m.meta), str(root)

    # -- forget ------------------------------------------------------------------------------------------
    def forget(self, only: str | None = None, dry_run: bool = False) -> list[ForgetResult]:
        now = self.clock.time()
        apply_policy([], self.spec.retention, now)  # refuses a missing policy before touching anything
        out: list[ForgetResult] = []
        for repo in [self.repo, *self.copies]:
            for src in self.sources(only):
                found = {m.id: m for m in repo.manifests(src.name)}
                decisions = apply_policy([(m.id, m.created_at) for m in found.values()],
                                         self.spec.retention, now)
                if not dry_run and any(not d.keep for d in decisions):
                    with repo.locked(f"forget backups of {src.name!r}"):
                        for d in decisions:
                            if not d.keep:
                                repo.delete(found[d.id])
                        repo.collect()  # the blobs only forgotten backups used
                out.append(ForgetResult(repo.url, src.name, tuple(decisions), not dry_run))
        return out
