"""MariaDB and Redis sources against real servers, through S3 and SFTP: the same rows / keys come back, to a
new target or over the original with --yes (refused without), and drills check them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis as redis_py

from shipyard.engine.backup import Backups, run_drills
from shipyard.errors import Refused

from .servers import MariaDB, Redis

SCHEMA = """
CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(64), note TEXT, data BLOB) ENGINE=InnoDB;
CREATE TABLE empty_one (id INT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO accounts SELECT seq, CONCAT('user ', seq), IF(seq % 3 = 0, 'multi\\nline ''quoted''', NULL),
  UNHEX(MD5(seq)) FROM seq_1_to_3000;
"""


def _rows(db: MariaDB, database: str) -> str:
    return db.sql("SELECT id, name, note, HEX(data) FROM accounts ORDER BY id", database)


@pytest.mark.parametrize("where", ["s3", "sftp"])
def test_mysql_round_trip(where: str, request: pytest.FixtureRequest, mariadb: MariaDB,
                          remote_backups: Callable[..., Backups]) -> None:
    database = f"app_{where}"
    mariadb.sql(f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}")
    mariadb.sql(SCHEMA, database)
    backups = remote_backups([{"kind": "mysql", "name": "orders", "url_secret": "MYSQL_URL"}],
                             request.getfixturevalue(f"{where}_url"), extra={"MYSQL_URL": mariadb.url(database)})
    [res] = backups.run()
    assert res.ok, res.error
    [m] = backups.list_backups()
    assert m.meta["tables"] == {"accounts": 3000, "empty_one": 0}
    assert all(v.ok for v in backups.verify())

    target = mariadb.url(f"{database}_restored")
    r = backups.restore("orders", to_url=target)
    assert r.ok, r.checks
    assert _rows(mariadb, f"{database}_restored") == _rows(mariadb, database)
    with pytest.raises(Refused, match="--yes"):
        backups.restore("orders", to_url=target)

    before = _rows(mariadb, database)
    mariadb.sql("DELETE FROM accounts WHERE id > 100; UPDATE accounts SET name = 'changed'", database)
    with pytest.raises(Refused, match="--yes"):
        backups.restore("orders")
    assert backups.restore("orders", replace=True).ok
    assert _rows(mariadb, database) == before

    [drill] = run_drills(backups)
    assert drill.ok, drill.checks
    assert "rows accounts" in {c.name for c in drill.checks}
    assert not [d for d in mariadb.sql("SHOW DATABASES").split() if "_drill_" in d]  # scratch dropped


@pytest.mark.parametrize("where", ["s3", "sftp"])
def test_redis_round_trip(where: str, tmp_path: Path, request: pytest.FixtureRequest, redis_server: Redis,
                          remote_backups: Callable[..., Backups]) -> None:
    live = redis_py.Redis.from_url(redis_server.url)
    live.flushall()
    pipe = live.pipeline()
    for i in range(2000):
        pipe.set(f"k:{i}", f"v{i}" * 10)
    pipe.hset("h", mapping={f"f{i}": i for i in range(100)})
    pipe.rpush("l", *range(50))
    pipe.set("ttl", "x", ex=3600)
    pipe.execute()
    redis_py.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3").set("other-db", "1")
    want = {k: live.dump(k) for k in live.scan_iter(count=1000)}
    backups = remote_backups([{"kind": "redis", "name": "cache", "url": redis_server.url}],
                             request.getfixturevalue(f"{where}_url"))
    [res] = backups.run()
    assert res.ok, res.error
    assert all(v.ok for v in backups.verify())

    r = backups.restore("cache", to_path=tmp_path / "rdb")
    assert r.ok and (tmp_path / "rdb" / "dump.rdb").stat().st_size > 0

    live.flushall()
    live.set("junk", "1")
    with pytest.raises(Refused, match="--yes"):
        backups.restore("cache")
    over = backups.restore("cache", replace=True)
    assert over.ok, over.checks
    assert {k: live.dump(k) for k in live.scan_iter(count=1000)} == want
    assert 3000 < int(live.pttl("ttl")) <= 3600_000
    assert redis_py.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3").get("other-db") == b"1"
    [drill] = run_drills(backups)
    assert drill.ok, drill.checks
