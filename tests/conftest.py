"""Shared fixtures: a real PostgreSQL cluster the suite starts itself, free ports, project dirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.primitives.pgcluster import PgCluster, free_port


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One real PostgreSQL server for the session (initdb + pg_ctl on a free port)."""
    cluster = PgCluster()
    cluster.init().start()
    try:
        yield cluster
    finally:
        cluster.destroy()


_db_counter = 0


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> str:
    """A fresh, empty database in the session cluster; returns its URL."""
    global _db_counter
    _db_counter += 1
    return pg_cluster.create_database(f"t{_db_counter}")


@pytest.fixture
def port() -> int:
    return free_port()
