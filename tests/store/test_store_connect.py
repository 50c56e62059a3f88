"""Choosing the database and reporting what goes wrong with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.store import ENV_VAR, open_store
from shipyard.primitives.store.connect import resolve_url


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_default_is_sqlite_under_state_dir(tmp_path: Path) -> None:
    url = resolve_url(None, tmp_path / ".shipyard")
    assert (url.drivername, url.database) == ("sqlite", str(tmp_path / ".shipyard" / "state.db"))


@pytest.mark.parametrize("raw", ["postgresql://u:pw@db.example:5433/ship", "postgres://u:pw@db.example:5433/ship",
                                 "postgresql+psycopg://u:pw@db.example:5433/ship"])
def test_postgres_urls_use_psycopg3(raw: str, tmp_path: Path) -> None:
    url = resolve_url(raw, tmp_path)
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database, url.username, url.password) == ("db.example", 5433, "ship", "u", "pw")


def test_env_var_names_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "postgresql://u@h/d")
    assert resolve_url(None, tmp_path).drivername == "postgresql+psycopg"
    # An explicit URL wins over the environment.
    assert resolve_url(f"sqlite:///{tmp_path}/x.db", tmp_path).database == f"{tmp_path}/x.db"
    monkeypatch.setenv(ENV_VAR, "  ")
    assert resolve_url(None, tmp_path).drivername == "sqlite"


@pytest.mark.parametrize("raw, message", [
    ("mysql://u@h/d", "unsupported database 'mysql'"),
    ("postgresql+psycopg2://u@h/d", "driver 'psycopg2' is not supported"),
    ("sqlite://", "SQLite needs a file path"),
    ("not a url", "not a database URL"),
])
def test_unsupported_urls(raw: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=message):
        open_store(raw, tmp_path)


def test_unreachable_postgres_is_clear_and_hides_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ShipyardError) as err:
        open_store(f"postgresql://shipyard:s3cr3t-pw@127.0.0.1:{port}/state", tmp_path)
    text = str(err.value)
    assert "s3cr3t-pw" not in text
    assert f"127.0.0.1:{port}" in text and "opening failed" in text
    assert err.value.exit_code == 1


def test_unreachable_postgres_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, f"postgresql://shipyard:an0ther-pw@127.0.0.1:{free_port()}/state")
    with pytest.raises(ShipyardError) as err:
        open_store(None, tmp_path)
    assert "an0ther-pw" not in str(err.value) and "***" in str(err.value)


def test_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ShipyardError, match="cannot create the state directory"):
        open_store(None, blocker / ".shipyard")


def test_unreadable_sqlite_file_is_clear(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ShipyardError, match="state database sqlite:///.*state.db: opening failed"):
        open_store(None, tmp_path)
