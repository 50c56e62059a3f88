"""The store tests run against both backends: SQLite in a temp dir and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.primitives.store import ENV_VAR, Store, open_store

from .workerproc import Worker


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None means the default (SQLite under the state dir); otherwise a fresh PostgreSQL database."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".shipyard"


@pytest.fixture
def store(db_url: str | None, state_dir: Path) -> Iterator[Store]:
    s = open_store(db_url, state_dir)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def open_another(db_url: str | None, state_dir: Path) -> Iterator[Callable[[], Store]]:
    """Opens more Store objects on the same database (as a second process would)."""
    opened: list[Store] = []

    def _open() -> Store:
        s = open_store(db_url, state_dir)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


@pytest.fixture
def workers(db_url: str | None, state_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Starts worker processes on the test's database; kills any left at the end."""
    started: list[Worker] = []

    def _start(action: str, release: str = "r1") -> Worker:
        w = Worker(action, db_url, state_dir, release, tmp_path / f"worker{len(started)}.log")
        started.append(w)
        return w

    yield _start
    for w in started:
        w.stop()
