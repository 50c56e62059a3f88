"""Backup settings (owned by the backup work): repository, schedule, retention, objectives, sources."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from shipyard.primitives.spec.base import MAX_LIST, LongDuration, SpecModel, duration_upto
from shipyard.primitives.spec.durations import DAY

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _check_cron(value: str) -> str:
    from croniter import croniter

    text = " ".join(value.split())
    if not croniter.is_valid(text):
        raise ValueError(f"not a valid cron expression: {value!r} (expected 5 fields, e.g. '0 3 * * *')")
    return text


def _check_name(value: str) -> str:
    # Names become directory names in the repository.
    if not _NAME.match(value):
        raise ValueError(f"source name {value!r} must be letters, digits, '_', '.' or '-' (max 63)")
    return value


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Cron = Annotated[str, AfterValidator(_check_cron)]
SourceName = Annotated[str, AfterValidator(_check_name)]
# Retention counts: 10,000 hourly backups is over a year of them.
Count = Annotated[int, Field(ge=1, le=10_000)]


class RetentionSpec(SpecModel):
    """restic's ``forget`` policy: a backup is kept when any rule keeps it."""

    keep_last: Count | None = None
    keep_hourly: Count | None = None
    keep_daily: Count | None = None
    keep_weekly: Count | None = None
    keep_monthly: Count | None = None
    keep_yearly: Count | None = None
    keep_within: LongDuration | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> RetentionSpec:
        if all(v is None for v in self.model_dump().values()) or self.keep_within == 0:
            raise ValueError("retention policy is empty: set at least one of keep_last, keep_hourly, "
                             "keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within")
        return self


class PostgresSource(SpecModel):
    kind: Literal["postgres"]
    name: SourceName
    url: str
    # Point-in-time recovery through pgBackRest (WAL archiving + full/incremental physical backups) instead
    # of the pg_dump stream. Needs the cluster on this machine.
    pitr: bool = False
    # PITR: the cluster's data directory; default: asked from the server (SHOW data_directory).
    data_dir: str | None = None
    # PITR: a full pgBackRest backup when the newest full is older than this, an incremental one otherwise.
    full_every: Annotated[float, duration_upto(365 * DAY), Field(gt=0)] = 7 * 86400.0
    # PITR: pgBackRest's process-max. (The pg_dump stream is compressed and encrypted on the pipeline's upload
    # threads; pg_dump -j needs the directory format, which would put the dump on disk in clear.)
    jobs: Annotated[int, Field(ge=1, le=64)] = 1
    # Drill checks: each statement must run and, when it returns a row, its first value must be truthy.
    check_sql: Annotated[list[str], BeforeValidator(_as_list), Field(max_length=100)] = []

    @model_validator(mode="after")
    def _url(self) -> PostgresSource:
        if not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"url must be a postgresql:// URL, got {self.url!r}")
        return self


class SqliteSource(SpecModel):
    kind: Literal["sqlite"]
    name: SourceName
    path: str


class FilesSource(SpecModel):
    kind: Literal["files"]
    name: SourceName
    path: str


class _UrlSource(SpecModel):
    name: SourceName
    url: str | None = None
    url_secret: str | None = None  # the name of the environment's secret holding the URL (it has a password)

    @model_validator(mode="after")
    def _one_url(self) -> _UrlSource:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("set exactly one of url and url_secret")
        return self


class MysqlSource(_UrlSource):
    """MySQL / MariaDB: mysql://user[:password]@host[:port]/database[?socket=/run/mysqld/mysqld.sock]."""

    kind: Literal["mysql"]


class RedisSource(_UrlSource):
    """Redis: redis://[:password@]host[:port] (every database of the server is in the snapshot)."""

    kind: Literal["redis"]


Source = Annotated[PostgresSource | SqliteSource | FilesSource | MysqlSource | RedisSource,
                   Field(discriminator="kind")]


class S3Settings(SpecModel):
    """S3-compatible object storage for ``s3://bucket/prefix`` repositories (credentials are secret names)."""

    endpoint: str | None = None  # default: AWS for the region
    region: str = "us-east-1"
    access_key_secret: str = "AWS_ACCESS_KEY_ID"
    secret_key_secret: str = "AWS_SECRET_ACCESS_KEY"
    path_style: bool = True  # bucket in the path (MinIO, SeaweedFS, most non-AWS servers)
    # Only for a test server with a self-signed certificate: pgBackRest's TLS check is relaxed too.
    verify_tls: bool = True
    ca_file: str | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> S3Settings:
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must start with https:// (or http://), got {self.endpoint!r}")
        return self


class SftpSettings(SpecModel):
    """``sftp://user@host[:port]/path`` repositories: key authentication, host key checked."""

    key_file: str = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"


class BackupSpec(SpecModel):
    repository: str
    s3: S3Settings | None = None
    sftp: SftpSettings | None = None
    # A backup of every source as the first step of each deploy of this environment.
    before_deploy: bool = False
    schedule: Cron | None = None
    retention: RetentionSpec | None = None
    rto: LongDuration | None = None
    rpo: LongDuration | None = None
    copy_to: Annotated[list[str], Field(max_length=10)] = []
    drill_schedule: Cron | None = None
    sources: list[Source] = Field(default_factory=list, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _check(self) -> BackupSpec:
        seen: set[str] = set()
        for src in self.sources:
            if src.name in seen:
                raise ValueError(f"source names must be unique: {src.name!r} is used twice")
            seen.add(src.name)
        if self.repository in self.copy_to:
            raise ValueError("copy_to must name repositories other than 'repository'")
        for url in [self.repository, *self.copy_to]:
            if url.startswith("s3://") and self.s3 is None:
                raise ValueError(f"{url}: s3:// repositories need the s3 settings (s3 = {{ endpoint, region, "
                                 "access_key_secret, secret_key_secret }})")
        return self

    def source(self, name: str) -> PostgresSource | SqliteSource | FilesSource | MysqlSource | RedisSource:
        for src in self.sources:
            if src.name == name:
                return src
        from shipyard.errors import NotFound

        known = ", ".join(s.name for s in self.sources) or "none"
        raise NotFound(f"unknown backup source {name!r} (known: {known})")
