"""PITR set-up and backups: learn the cluster, set WAL archiving, create the stanza, back up full or incr.

WAL archiving is set with ALTER SYSTEM + pg_reload_conf() when the source's user is a superuser; otherwise
the error names the settings to put in postgresql.conf. ``archive_mode`` and ``wal_level`` only change at a
server restart, which shipyard does not do (it does not own the server): the run fails saying so, and
succeeds once the server has been restarted. An ``archive_command`` someone else set is never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from shipyard.engine.backup.pitr import PITR_DIR, ClusterFacts, Stanza, archive_timeout_for, backups_of
from shipyard.engine.backup.sources.postgres import connect, split_url
from shipyard.errors import ConfigError, ShipyardError
from shipyard.primitives.clock import Clock

_SETTINGS = ("data_directory", "port", "unix_socket_directories", "archive_mode", "archive_command",
             "archive_library", "wal_level", "archive_timeout", "is_superuser")


@dataclass(frozen=True)
class PitrBackup:
    label: str
    type: str  # full | incr
    size: int  # of the cluster
    stored: int  # what this backup added to the repository
    stop: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def _settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(_SETTINGS),))
    got = {str(k): str(v) for k, v in rows.fetchall()}
    row = conn.execute("SELECT current_setting('is_superuser')").fetchone()
    got["is_superuser"] = str(row[0]) if row else "off"
    if got.get("archive_command") == "(disabled)" and got["is_superuser"] == "on":
        # Shown as "(disabled)" while archive_mode is off: read what the configuration files say.
        row = conn.execute("SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND applied "
                           "ORDER BY seqno DESC LIMIT 1").fetchone()
        got["archive_command"] = str(row[0]) if row else ""
    return got


def probe(stanza: Stanza, conn: psycopg.Connection[Any], s: dict[str, str]) -> ClusterFacts:
    src = stanza.src
    data_dir = src.data_dir or s.get("data_directory")
    if not data_dir:
        raise ConfigError(f"source {src.name!r}: the server does not tell its data directory to this user; set "
                          "data_dir on the source (pgBackRest reads the cluster's files)")
    if not os.path.isdir(data_dir):
        raise ConfigError(f"source {src.name!r}: data directory {data_dir} is not on this machine; PITR needs the "
                          "cluster local to shipyard (pgBackRest reads its files)")
    owner = os.stat(data_dir).st_uid
    if os.geteuid() not in (0, owner):
        raise ConfigError(f"source {src.name!r}: pgBackRest must run as the cluster's OS user (uid {owner}, owner "
                          f"of {data_dir}); run shipyard as that user or as root")
    sockets = [d.strip() for d in s.get("unix_socket_directories", "").split(",") if d.strip()]
    sockets = [d for d in sockets if not d.startswith("@")]
    if not sockets:
        raise ConfigError(f"source {src.name!r}: the server has no Unix socket (unix_socket_directories is "
                          "empty); pgBackRest connects through it")
    params = conninfo_to_dict(src.url)
    user = str(params.get("user") or conn.info.user)
    return ClusterFacts(data_dir=data_dir, port=int(s["port"]), socket_dir=sockets[0], user=user,
                        database=str(params.get("dbname") or conn.info.dbname))


def _archiving(stanza: Stanza, conn: psycopg.Connection[Any], s: dict[str, str], facts: ClusterFacts,
               rpo: float | None) -> list[str]:
    """Makes the server archive WAL into the stanza; returns what was changed. Raises when a restart (or
    a human, for lack of rights) is needed."""
    where = f"source {stanza.name!r}"
    want = stanza.archive_command
    current = s.get("archive_command", "")
    if s.get("archive_library"):
        raise ConfigError(f"{where}: archive_library = {s['archive_library']!r} is set; PITR archives with "
                          f"archive_command = {want!r} (clear archive_library)")
    ours = f"/{PITR_DIR}/stanzas/" in current and "archive-push" in current  # e.g. the repository moved
    if current not in ("", "(disabled)", want) and not ours:
        raise ConfigError(f"{where}: archive_command is already {current!r}; shipyard will not replace "
                          f"another archiver. Set it to {want!r} (or turn pitr off)")
    changes: dict[str, str] = {}
    restart: list[str] = []
    if current != want:
        changes["archive_command"] = want
    if s.get("wal_level") == "minimal":
        changes["wal_level"] = "replica"
        restart.append("wal_level")
    if s.get("archive_mode") == "off":
        changes["archive_mode"] = "on"
        restart.append("archive_mode")
    timeout = archive_timeout_for(rpo)
    if not 1 <= int(s.get("archive_timeout") or 0) <= timeout:  # keep a setting that is already as frequent
        changes["archive_timeout"] = f"{timeout}s"
    if changes and s.get("is_superuser") != "on":
        wanted = "; ".join(f"{k} = '{v}'" for k, v in changes.items())
        raise ConfigError(f"{where}: WAL archiving is not set up and {facts.user!r} is not a superuser, so "
                          f"shipyard cannot set it. Put in postgresql.conf: {wanted}; then "
                          + ("restart PostgreSQL" if restart else "reload PostgreSQL (SELECT pg_reload_conf())"))
    for name, value in changes.items():
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    if changes:
        conn.execute("SELECT pg_reload_conf()")
    if restart:
        raise ShipyardError(
            f"{where}: set {', '.join(f'{k} = {changes[k]}' for k in restart)} with ALTER SYSTEM; this takes effect "
            f"only when PostgreSQL restarts. Restart it (e.g. `systemctl restart postgresql` or `pg_ctl restart -D "
            f"{facts.data_dir}`), then run `shipyard backup run` again")
    return [f"set {k} = {v!r} (ALTER SYSTEM, reloaded)" for k, v in changes.items()]


def configure(stanza: Stanza, rpo: float | None) -> list[str]:
    """Idempotent: learns the cluster, writes the configuration, sets archiving, creates the stanza and,
    when anything changed, runs ``pgbackrest check`` (which proves a WAL segment reaches the archive)."""
    with connect(stanza.src.url, f"source {stanza.name!r}", autocommit=True) as conn:
        s = _settings(conn)
        facts = probe(stanza, conn, s)
        changed = stanza.prepare(facts)
        notes = _archiving(stanza, conn, s, facts, rpo)
    _, env = split_url(stanza.src.url)
    created = not stanza.stanza_exists()
    if created:
        stanza.pgbackrest("stanza-create", env=env, timeout=300)
        notes.append(f"created pgBackRest stanza {stanza.name!r} in {stanza.location}")
    if created or changed or notes:
        stanza.pgbackrest("check", env=env, timeout=300, what="check (is WAL reaching the archive?)")
    return notes


def backup(stanza: Stanza, clock: Clock, rpo: float | None) -> PitrBackup:
    """Full when there is none yet or the newest is older than the source's ``full_every``, else incr."""
    notes = configure(stanza, rpo)
    fulls = [b for b in backups_of(stanza.info()) if b.get("type") == "full"]
    newest_full = max((float(b["timestamp"]["stop"]) for b in fulls), default=None)
    kind = "full" if newest_full is None or clock.time() - newest_full >= stanza.src.full_every else "incr"
    _, env = split_url(stanza.src.url)
    before = {b["label"] for b in backups_of(stanza.info())}
    stanza.pgbackrest("backup", f"--type={kind}", env=env, timeout=24 * 3600)
    made = [b for b in backups_of(stanza.info()) if b["label"] not in before]
    if not made:
        raise ShipyardError(f"pgBackRest backup of source {stanza.name!r} reported success but no new backup "
                            "is listed")
    b = made[-1]
    return PitrBackup(label=b["label"], type=b["type"], size=int(b["info"]["size"]),
                      stored=int(b["info"]["repository"]["delta"]), stop=float(b["timestamp"]["stop"]),
                      notes=tuple(notes))
