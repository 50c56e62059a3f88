"""Faces tests: the store parts run against both backends (SQLite and a fresh PostgreSQL database); the
SMTP server and HTTP recorder of tests/notify receive the reports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.conftest import recorder, smtp  # noqa: F401 (the real receivers of tests/notify, shared)
from shipyard.primitives.store import ENV_VAR, Store, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_database"))
    s = open_store(url, tmp_path / ".shipyard")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, the browser of the browser tests (Playwright's own download cannot work here).
    Missing is a failure, not a skip: a skipped browser test would let `make test` pass without them."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run make setup (scripts/setup-system.sh)")
    return path
