"""Redis: an RDB snapshot taken through the server (``redis-cli --rdb -``: the server forks and streams
the snapshot it would write for BGSAVE, over the replication protocol), streamed into the pipeline.

Restore: ``--to-path DIR`` writes ``dump.rdb`` there (``redis-server --dir DIR`` loads it). Into a live
server (``--to redis://…``, or over the original with ``--yes``) the RDB is loaded by a private
``redis-server`` (a Unix socket in a fresh 0700 directory, no TCP) and every key is copied with
DUMP / RESTORE … REPLACE, keeping its TTL: a live server cannot load an RDB without a restart.
Key counts per database are taken from the snapshot as loaded (drills and restores compare them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from shipyard.engine.backup.sources.base import BLOCK, DumpInfo, RestoreCheck, RestoreTarget, Writable
from shipyard.errors import BadInput, Refused, ShipyardError
from shipyard.primitives.clock import Clock


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ShipyardError(f"{name} not found; install Redis (Debian: redis-server, redis-tools)")
    return found


def _client(url: str, what: str, db: int | None = None) -> Any:
    import redis

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise BadInput(f"{what}: expected a redis:// URL")
    if db is not None:  # the URL's own database (path or ?db=) would win over a keyword
        p = urlsplit(url)
        url = f"unix://{p.path}?db={db}" if p.scheme == "unix" else urlunsplit(p._replace(path=f"/{db}"))
    return redis.Redis.from_url(url, socket_timeout=30)


def _cli_args(url: str) -> list[str]:
    p = urlsplit(url)
    if p.scheme == "unix":
        return ["-s", p.path]
    args = ["-h", p.hostname or "127.0.0.1", "-p", str(p.port or 6379)]
    if p.scheme == "rediss":
        args.append("--tls")
    if p.username:
        args += ["--user", unquote(p.username)]
    return args


def _cli_env(url: str) -> dict[str, str]:
    """The password in the child's environment (REDISCLI_AUTH), never on its command line."""
    env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    password = urlsplit(url).password
    if password:
        env["REDISCLI_AUTH"] = unquote(password)
    return env


def _keyspace(conn: Any) -> dict[str, int]:
    info = conn.info("keyspace")
    return {db: int(v["keys"]) for db, v in sorted(info.items())}


def dump(name: str, url: str, sink: Writable, clock: Clock) -> DumpInfo:
    keys = _keyspace(_client(url, f"source {name!r}"))  # for listing; checks use the snapshot's own counts
    snapshot_time = clock.time()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([_tool("redis-cli"), *_cli_args(url), "--rdb", "-"],
                                stdout=subprocess.PIPE, stderr=err, env=_cli_env(url))
        assert proc.stdout is not None
        size = 0
        try:
            while block := proc.stdout.read(BLOCK):
                sink.write(block)
                size += len(block)
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0 or size == 0:
            err.seek(0)
            raise ShipyardError(f"source {name!r}: redis-cli --rdb failed (exit {rc}): "
                                f"{err.read().decode(errors='replace').strip()[-800:]}")
    version = str(_client(url, name).info("server").get("redis_version", "?"))
    return DumpInfo(snapshot_time, {"keys": keys, "rdb_size": size, "server_version": version, "format": "rdb"},
                    {"redis-cli": subprocess.run([_tool("redis-cli"), "--version"], capture_output=True,
                                                 text=True, timeout=30).stdout.strip()})


@contextlib.contextmanager
def loaded(rdb: Path) -> Iterator[Any]:
    """A private redis-server that loaded ``rdb`` (Unix socket only); yields its URL."""
    d = Path(tempfile.mkdtemp(prefix="shipyard-redis-"))
    os.chmod(d, 0o700)
    shutil.copyfile(rdb, d / "dump.rdb")
    sock = d / "redis.sock"
    proc = subprocess.Popen([_tool("redis-server"), "--port", "0", "--unixsocket", str(sock), "--dir", str(d),
                             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = _client(f"unix://{sock}", "scratch server")
        conn.connection_pool.connection_kwargs["socket_connect_timeout"] = 1
        deadline = time.monotonic() + 60
        while True:
            try:
                if conn.info("persistence").get("loading") == 0:
                    break
            except Exception:  # not listening yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ShipyardError("the restored RDB does not load in redis-server") from None
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def _copy(src: Any, dst: Any, keys: list[bytes]) -> None:
    """DUMP + PTTL of ``keys`` in one round trip, RESTORE … REPLACE of them in another."""
    if not keys:
        return
    read = src.pipeline(transaction=False)
    for key in keys:
        read.pttl(key)
        read.dump(key)
    got = read.execute()
    write = dst.pipeline(transaction=False)
    for i, key in enumerate(keys):
        write.restore(key, max(0, int(got[2 * i])), got[2 * i + 1], replace=True)
    write.execute()


def _write_rdb(blocks: Iterator[bytes], dest: Path) -> None:
    with open(dest, "wb") as fh:
        for block in blocks:  # raises IntegrityError before the file is used
            fh.write(block)


def restore(name: str, url: str, blocks: Iterator[bytes], target: RestoreTarget) -> tuple[str, dict[str, int]]:
    """Returns where it went and the key counts of the snapshot."""
    if target.path is not None:
        dest = target.path / "dump.rdb" if target.path.is_dir() or not target.path.suffix else target.path
        if dest.exists() and not target.replace:
            raise Refused(f"{dest} exists; pass --yes to restore over it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".restore")
        try:
            _write_rdb(blocks, tmp)
            with loaded(tmp) as scratch:
                counts = _keyspace(_client(scratch, "scratch server"))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return str(dest), counts
    dest_url = target.url or url
    if target.url is None and not target.replace:
        raise Refused(f"restoring over the original Redis of source {name!r} needs --yes")
    live = _client(dest_url, "restore target")
    if _keyspace(live) and not target.replace:
        raise Refused("the target Redis holds keys; pass --yes to restore over it (it is flushed first)")
    with tempfile.TemporaryDirectory(prefix="shipyard-rdb-") as tmpdir:
        rdb = Path(tmpdir) / "dump.rdb"
        os.chmod(tmpdir, 0o700)
        _write_rdb(blocks, rdb)
        with loaded(rdb) as scratch:
            counts = _keyspace(_client(scratch, "scratch server"))
            live.flushall()
            for db in counts:
                index = int(db.removeprefix("db"))
                src, dst = _client(scratch, "scratch", index), _client(dest_url, "restore target", index)
                batch: list[bytes] = []
                for key in src.scan_iter(count=1000):
                    batch.append(key)
                    if len(batch) == 500:
                        _copy(src, dst, batch)
                        batch = []
                _copy(src, dst, batch)
    return dest_url, counts


def check(where: str | None, snapshot: dict[str, int], at_start: dict[str, int]) -> list[RestoreCheck]:
    """The RDB loaded (``snapshot``: its key counts); restored into a server (``where``), that server holds
    as many keys per database. The counts taken when the backup started are shown beside them (writes
    between that moment and the fork make them differ)."""
    checks = [RestoreCheck("rdb loads", True, f"{sum(snapshot.values())} keys (at the start of the backup: "
                                              f"{sum(at_start.values())})")]
    if where is not None:
        got = _keyspace(_client(where, "restored"))
        checks += [RestoreCheck(f"keys {db}", got.get(db) == n, f"{got.get(db)} keys, snapshot {n}")
                   for db, n in sorted(snapshot.items())]
    return checks
