"""PITR restores: pgBackRest restores a backup set into a data directory, PostgreSQL replays archived WAL up
to the target time and promotes.

Into a new directory (``--to-path`` or a drill's scratch one) shipyard then starts the restored cluster on
a private socket with archiving off, waits for the promotion, checks it and stops it again; the directory is
left ready to start. Over the original (``--yes``) the server must be stopped; pgBackRest restores with
``--delta`` and the next start of the server does the recovery (archiving stays on: a new timeline).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from shipyard.engine.backup.pitr import Stanza, backups_of, iso, pg_time
from shipyard.engine.backup.sources import postgres
from shipyard.engine.backup.sources.base import RestoreCheck
from shipyard.errors import BadInput, NotFound, Refused, ShipyardError
from shipyard.primitives.pgcluster import find_pg_bin, free_port

_NOT_REACHED = "recovery ended before configured recovery target was reached"
_LAST_TX = re.compile(r"last completed transaction was at log time (.+)$", re.M)


@dataclass(frozen=True)
class PitrRestored:
    label: str
    target: str
    checks: tuple[RestoreCheck, ...]
    note: str


class _RecoveryFailed(ShipyardError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def choose_set(stanza: Stanza, info: dict[str, Any], at: datetime | None, label: str | None,
               now: float) -> str:
    """The backup set to start from: the given one, the newest, or the newest that ended by ``at``.

    shipyard picks it (and passes ``--set``) because pgBackRest compares backup stop times in whole seconds
    and would refuse a target less than a second after the newest backup."""
    sets = [b for b in backups_of(info) if not b.get("error")]
    if not sets:
        raise NotFound(f"no pgBackRest backups of source {stanza.name!r} in {stanza.location}")
    if at is not None:
        t = at.timestamp()
        if t > now:
            raise BadInput(f"--at {pg_time(at)} is in the future")
        newest = stanza.restorable_until(info, now)
        if newest is not None and t > newest:
            raise BadInput(f"--at {pg_time(at)} is after the newest archived WAL ({iso(newest)}); PostgreSQL "
                           "cannot recover to a time the archive does not reach yet. Wait for the next segment "
                           "(archive_timeout) or run SELECT pg_switch_wal() on the source")
    if label is not None:
        chosen = [b for b in sets if b["label"] == label]
        if not chosen:
            raise NotFound(f"no pgBackRest backup {label!r} of source {stanza.name!r} "
                           f"(have: {', '.join(b['label'] for b in sets)})")
        if at is not None and chosen[0]["timestamp"]["stop"] > at.timestamp():
            raise BadInput(f"backup {label} ended at {iso(chosen[0]['timestamp']['stop'])}, after --at "
                           f"{pg_time(at)}; pick an older backup or leave --backup out")
        return label
    if at is None:
        return str(sets[-1]["label"])
    before = [b for b in sets if b["timestamp"]["stop"] <= at.timestamp()]
    if not before:
        first = sets[0]
        raise BadInput(f"--at {pg_time(at)} is before the earliest restorable point "
                       f"{iso(first['timestamp']['stop'])} (the end of the oldest backup, {first['label']})")
    return str(before[-1]["label"])


def _restore_args(label: str, at: datetime | None) -> list[str]:
    args = [f"--set={label}"]
    if at is not None:
        args += ["--type=time", f"--target={pg_time(at)}", "--target-action=promote"]
    return args


def _log_problems(log: str) -> str:
    noise = ("is starting up", "not yet accepting connections")  # pg_ctl's own probes while it waits
    lines = [ln.strip() for ln in log.splitlines()
             if ("FATAL" in ln or "PANIC" in ln) and not any(n in ln for n in noise)]
    return "; ".join(lines[-3:]) or log.strip()[-800:]


@contextlib.contextmanager
def started(stanza: Stanza, datadir: Path, timeout: float = 3600) -> Iterator[tuple[str, str]]:
    """Starts a restored data directory privately (Unix socket in a fresh 0700 directory, no TCP, trust
    there only, archiving off), waits until recovery has finished and yields (conninfo, server log)."""
    run = Path(tempfile.mkdtemp(prefix="shipyard-pitr-"))
    stanza.own(run, 0o700)
    log = run / "server.log"
    prefix = ["runuser", "-u", user, "--"] if (user := stanza.run_as()) else []
    pg_ctl = str(find_pg_bin() / "pg_ctl")
    try:
        hba = run / "pg_hba.conf"
        hba.write_text("local all all trust\n")
        stanza.own(hba, 0o600)
        port = free_port()  # names the socket file; no TCP
        opts = [f"port={port}", "listen_addresses=", f"unix_socket_directories={run}", f"hba_file={hba}",
                "archive_mode=off"]
        if not (datadir / "postgresql.conf").exists():  # Debian keeps it in /etc/postgresql: start bare
            conf = run / "postgresql.conf"
            conf.write_text("")
            stanza.own(conf, 0o600)
            opts.append(f"config_file={conf}")
        cmd = [*prefix, pg_ctl, "-D", str(datadir), "-l", str(log), "-w", "-t", str(int(timeout)),
               "-o", " ".join("-c " + shlex.quote(o) for o in opts), "start"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=run)
        text = log.read_text(errors="replace") if log.exists() else ""
        if proc.returncode != 0:
            raise _RecoveryFailed(f"the restored cluster did not start: {_log_problems(text or proc.stderr)}", text)
        facts = stanza.facts()
        user_db = (facts.user, facts.database) if facts else ("postgres", "postgres")
        conninfo = make_conninfo("", host=str(run), port=str(port), user=user_db[0], dbname=user_db[1])
        try:
            _wait_promoted(conninfo, datadir, log, time.monotonic() + timeout)
            yield conninfo, log.read_text(errors="replace")
        finally:
            subprocess.run([*prefix, pg_ctl, "-D", str(datadir), "-m", "fast", "-w", "-t", "120", "stop"],
                           capture_output=True, timeout=180, cwd=run)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def _wait_promoted(conninfo: str, datadir: Path, log: Path, deadline: float) -> None:
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=10, autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    return
        except psycopg.OperationalError:
            if not (datadir / "postmaster.pid").exists():  # the server gave up (e.g. target not reached)
                text = log.read_text(errors="replace") if log.exists() else ""
                raise _RecoveryFailed(f"recovery failed: {_log_problems(text)}", text) from None
        if time.monotonic() > deadline:
            raise ShipyardError("the restored cluster was still recovering when the time ran out")
        time.sleep(0.1)


def restore_to_dir(stanza: Stanza, dest: Path, *, at: datetime | None, label: str | None, now: float,
                   user_sql: bool = False) -> PitrRestored:
    """pgBackRest restore into the new or empty ``dest``, then start, wait for promotion, check, stop."""
    info = stanza.info()
    chosen = choose_set(stanza, info, at, label, now)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest} is not an empty directory; a PITR restore needs a new or empty one (it becomes "
                       "a PostgreSQL data directory)")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        stanza.own(dest, 0o700)
        if not stanza.can_write(dest):
            raise BadInput(f"the OS user {stanza.run_as()!r} cannot write {dest}; make its parent directories "
                           "traversable (chmod o+x) or restore elsewhere")
        # Archiving off: the restored copy must never push its WAL (a new timeline) into the source's archive.
        base = [f"--pg1-path={dest}", "--archive-mode=off"]
        stanza.pgbackrest("restore", *base, *_restore_args(chosen, at))
        checks = [RestoreCheck("restore", True, f"backup set {chosen}")]
        try:
            checks += _check_started(stanza, dest, user_sql)
        except _RecoveryFailed as exc:
            if at is None or _NOT_REACHED not in exc.log:
                raise
            # No transaction committed between --at and the end of the archive, which reaches past --at
            # (choose_set checked): the end of the archive is then exactly the state at --at.
            stanza.pgbackrest("restore", *base, "--delta", f"--set={chosen}")
            checks += _check_started(stanza, dest, user_sql, "no transaction after --at in the archive; "
                                                             "recovered to its end")
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    what = f"recovered to {pg_time(at)}" if at is not None else "recovered to the end of the WAL archive"
    note = (f"{what}; {dest} is a PostgreSQL data directory with archiving off. Start it as the cluster's "
            f"owner: pg_ctl -D {dest} -o '-p PORT' start")
    return PitrRestored(chosen, str(dest), tuple(checks), note)


def _check_started(stanza: Stanza, dest: Path, user_sql: bool, extra: str = "") -> list[RestoreCheck]:
    with started(stanza, dest) as (conninfo, log):
        found = _LAST_TX.findall(log)
        detail = f"promoted; last transaction {found[-1].strip()}" if found else "promoted"
        checks = [RestoreCheck("recovery", True, f"{detail}; {extra}" if extra else detail)]
        checks += postgres.check(stanza.src, conninfo, {}, user_sql=user_sql)
    return checks


def restore_over_original(stanza: Stanza, *, at: datetime | None, label: str | None, now: float) -> PitrRestored:
    """Over the source's own data directory (the server must be stopped); it recovers when next started."""
    facts = stanza.facts()
    if facts is None:
        raise NotFound(f"source {stanza.name!r}: shipyard has not learnt the cluster's data directory yet "
                       "(no successful `backup run`); restore with --to-path DIR")
    if (Path(facts.data_dir) / "postmaster.pid").exists():
        raise Refused(f"PostgreSQL is running on {facts.data_dir}; stop it first (e.g. `systemctl stop "
                      "postgresql`), then restore over it. WAL not archived yet is lost: run SELECT "
                      "pg_switch_wal() before stopping if you need everything up to now")
    chosen = choose_set(stanza, stanza.info(), at, label, now)
    stanza.pgbackrest("restore", "--delta", *_restore_args(chosen, at))
    what = f"to {pg_time(at)}" if at is not None else "to the end of the WAL archive"
    return PitrRestored(chosen, facts.data_dir, (RestoreCheck("restore", True, f"backup set {chosen}"),),
                        f"start PostgreSQL: it replays the archived WAL {what} and promotes to a new timeline "
                        "(archiving into the same stanza continues)")
