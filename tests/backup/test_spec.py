"""The backup section of shipyard.toml: the issue's example is accepted as written; mistakes are named."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from shipyard.primitives.spec.backup import BackupSpec, FilesSource, PostgresSource, SqliteSource

EXAMPLE = """
[environments.staging.backup]
repository = "/srv/backups/app"      # a directory; a second one may be named in copy_to
schedule = "0 3 * * *"               # daily full at 03:00
retention = { keep_daily = 7, keep_weekly = 4, keep_within = "30d" }
rto = "1h"
rpo = "15m"

[[environments.staging.backup.sources]]
name = "db"
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:5432/app"

[[environments.staging.backup.sources]]
name = "uploads"
kind = "files"
path = "/srv/app/uploads"

[[environments.staging.backup.sources]]
name = "cache"
kind = "sqlite"
path = "/srv/app/app.db"
"""


def section() -> dict[str, object]:
    return dict(tomllib.loads(EXAMPLE)["environments"]["staging"]["backup"])


def test_issue_example_is_accepted() -> None:
    spec = BackupSpec.model_validate(section())
    assert spec.schedule == "0 3 * * *" and spec.rto == 3600 and spec.rpo == 900
    assert spec.retention is not None and spec.retention.keep_within == 30 * 86400
    assert spec.retention.keep_daily == 7 and spec.retention.keep_last is None
    assert [type(s) for s in spec.sources] == [PostgresSource, FilesSource, SqliteSource]
    db = spec.source("db")
    assert isinstance(db, PostgresSource) and db.pitr is False and db.jobs == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"schedule": "0 3 * *"}, "not a valid cron expression"),
    ({"drill_schedule": "every day"}, "not a valid cron expression"),
    ({"retention": {}}, "retention policy is empty"),
    ({"retention": {"keep_daly": 7}}, "keep_daly"),
    ({"rto": "soon"}, "expected a duration"),
    ({"sources": [{"name": "a", "kind": "ftp", "path": "/x"}]}, "postgres', 'sqlite', 'files'"),
    ({"sources": [{"name": "a", "kind": "files", "path": "/x"}, {"name": "a", "kind": "sqlite", "path": "/y"}]},
     "unique"),
    ({"sources": [{"name": "a", "kind": "postgres", "url": "mysql://x"}]}, "postgresql:// URL"),
    ({"sources": [{"name": "a/b", "kind": "files", "path": "/x"}]}, "letters, digits"),
    ({"sources": [{"name": "a", "kind": "files"}]}, "path"),
])
def test_mistakes_are_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackupSpec.model_validate({**section(), **change})


def test_postgres_source_options() -> None:
    spec = BackupSpec.model_validate({"repository": "r", "copy_to": ["/mnt/offsite/app"], "sources": [
        {"name": "db", "kind": "postgres", "url": "postgresql://x/y", "pitr": True, "jobs": 4,
         "check_sql": "SELECT count(*) > 0 FROM users"}]})
    db = spec.source("db")
    assert isinstance(db, PostgresSource)
    assert db.pitr and db.jobs == 4 and db.check_sql == ["SELECT count(*) > 0 FROM users"]
