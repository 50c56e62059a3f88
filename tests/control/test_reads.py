"""The read routes (control/reads.py) over a real state store and spec file, and the long-operation stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.control import reads
from shipyard.control.backups import BackupService
from shipyard.control.paths import Paths
from shipyard.control.reads import ReadContext, read_routes
from shipyard.errors import BadInput, NotFound, Refused, ShipyardError
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store, open_store

SPEC = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"

[environments.staging]
port = 8000
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    s = open_store(None, tmp_path / ".shipyard")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def routes(tmp_path: Path, store: Store) -> dict[tuple[str, str], Any]:
    paths = Paths(tmp_path)
    clock = ManualClock(1_700_000_000.0)

    def spec() -> Any:
        return load_spec(tmp_path / "shipyard.toml")

    service = BackupService(store=store, secrets=SecretStore(paths.state), paths=paths, load_spec=spec, clock=clock)
    return read_routes(ReadContext(store, paths, clock, spec, service))


def call(routes: dict[tuple[str, str], Any], method: str, path: str, q: dict[str, str] | None = None,
         body: dict[str, Any] | None = None) -> Any:
    return asyncio.run(routes[(method, path)](body or {}, q or {}, None))


def test_history_rows_and_bad_input(routes: dict[tuple[str, str], Any], store: Store) -> None:
    dep = store.begin_deployment("staging", kind="deploy", release="r1", previous_release=None, strategy="rolling",
                                 plan=[], started_at=10.0)
    store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=12.5)
    rows = call(routes, "GET", "/v1/history", {"env": "staging"})
    assert [(r["deployment"], r["release"], r["outcome"], r["duration_s"]) for r in rows] == [(dep.id, "r1",
                                                                                             "succeeded", 2.5)]
    with pytest.raises(NotFound, match="unknown environment 'prod'"):
        call(routes, "GET", "/v1/history", {"env": "prod"})
    with pytest.raises(BadInput, match="--limit must be a whole number"):
        call(routes, "GET", "/v1/history", {"env": "staging", "limit": "ten"})
    with pytest.raises(BadInput, match="--env is required"):
        call(routes, "GET", "/v1/instances")


def test_backup_routes_refuse_before_any_work(routes: dict[tuple[str, str], Any]) -> None:
    with pytest.raises(Refused, match="--yes"):
        call(routes, "POST", "/v1/backups/restore", body={"env": "staging", "source": "db"})
    with pytest.raises(BadInput, match="not both"):
        call(routes, "POST", "/v1/backups/restore", body={"env": "staging", "source": "db", "to": "x",
                                                           "to_path": "/y"})
    with pytest.raises(BadInput, match="no backups configured"):
        call(routes, "GET", "/v1/backups", {"env": "staging"})


async def _events(stream: Any, n: int) -> list[dict[str, Any]]:
    return [await stream.__anext__() for _ in range(n)]


def test_long_operations_send_heartbeats_then_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "HEARTBEAT_S", 0.01)

    async def scenario() -> None:
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        stream = reads._follow("backup run", "staging", done, ManualClock(0.0))
        first = await _events(stream, 2)
        assert [e["event"] for e in first] == ["started", "heartbeat"]
        done.set_result({"result": [1], "warnings": []})
        rest = [e async for e in stream]
        assert rest[-1] == {"event": "result", "result": [1], "warnings": []}

        failed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        failed.set_exception(BadInput("wrong backup key"))
        events = [e async for e in reads._follow("backup restore", "staging", failed, ManualClock(0.0))]
        assert events[-1] == {"event": "error", "error": "wrong backup key", "exit_code": 2}

        broken: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        broken.set_exception(RuntimeError("bug"))
        events = [e async for e in reads._follow("backup drill", "staging", broken, ManualClock(0.0))]
        assert events[-1]["event"] == "error" and events[-1]["exit_code"] == ShipyardError.exit_code
        assert "backup drill failed" in events[-1]["error"]

    asyncio.run(scenario())
