"""Backup runs, restores, drills and forgets through the control API's routes are audited when they end:
the performer, the environment, the source, the outcome (failures too), what was restored where — a target
URL without its password. A real files source, a real local repository and the real state store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shipyard.control.backups import BackupService
from shipyard.control.paths import Paths
from shipyard.control.reads import ReadContext, read_routes, redact_url
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

SPEC = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"

[environments.prod]
port = 8000

[environments.prod.backup]
repository = "backups"
rto = "1h"
rpo = "1h"

[environments.prod.backup.retention]
keep_daily = 7

[[environments.prod.backup.sources]]
name = "uploads"
kind = "files"
path = "uploads"
"""


def _drain(stream: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [ev async for ev in await stream]

    return asyncio.run(go())


def test_runs_restores_drills_and_forgets_are_audited_with_their_outcome(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "a.txt").write_text("a user's upload\n")
    paths = Paths(tmp_path)
    paths.ensure()
    store = open_store(None, paths.state)
    try:
        clock = SystemClock()

        def spec() -> Any:
            return load_spec(tmp_path / "shipyard.toml")

        service = BackupService(store=store, secrets=SecretStore(paths.state), paths=paths, load_spec=spec,
                                clock=clock)
        routes = read_routes(ReadContext(store, paths, clock, spec, service))
        ops = SimpleNamespace(performer="ops-bot (octocat)")

        def call(path: str, body: dict[str, Any]) -> Any:
            return routes[("POST", path)](body, {}, ops)

        ran = _drain(call("/v1/backups/run", {"env": "prod"}))
        assert ran[-1]["event"] == "result" and ran[-1]["result"][0]["ok"], ran
        backup_id = ran[-1]["result"][0]["backup_id"]
        restored = _drain(call("/v1/backups/restore", {"env": "prod", "source": "uploads",
                                                       "to_path": str(tmp_path / "copy")}))
        assert restored[-1]["event"] == "result", restored
        assert (tmp_path / "copy" / "a.txt").read_text() == "a user's upload\n"
        bad = _drain(call("/v1/backups/restore", {"env": "prod", "source": "uploads", "backup": "nope",
                                                  "to": "postgresql://app:hunter2@db.internal:5432/app"}))
        assert bad[-1]["event"] == "error", bad
        drilled = _drain(call("/v1/backups/drill", {"env": "prod"}))
        assert drilled[-1]["event"] == "result", drilled
        forgot = asyncio.run(call("/v1/backups/forget", {"env": "prod", "dry_run": True}))
        assert isinstance(forgot, list)

        rows = store.list_audit("prod")  # oldest first
        assert [(r.action, r.performer, r.env, r.target, r.detail["outcome"]) for r in rows] == [  # type: ignore[index]
            ("backup_run", "ops-bot (octocat)", "prod", "*", "ok"),
            ("backup_restore", "ops-bot (octocat)", "prod", "uploads", "ok"),
            ("backup_restore", "ops-bot (octocat)", "prod", "uploads", "failed"),
            ("backup_drill", "ops-bot (octocat)", "prod", "*", "ok"),
            ("backup_forget", "ops-bot (octocat)", "prod", "*", "ok")]
        run, ok, failed, _, forget = (r.detail or {} for r in rows)
        assert run["backup_ids"] == [backup_id]
        assert ok["to_path"] == str(tmp_path / "copy") and ok["backup_ids"] == [backup_id]
        assert failed["to"] == "postgresql://app:***@db.internal:5432/app" and failed["error"]
        assert forget["dry_run"] is True
        assert "hunter2" not in repr([r.detail for r in rows]), "a password never reaches the audit"
    finally:
        store.close()


def test_a_target_url_loses_its_password() -> None:
    assert redact_url("postgresql://app@db/app") == "postgresql://app@db/app"
    assert redact_url("redis://:pw@cache:6379") == "redis://:***@cache:6379"


def test_an_interrupted_or_refused_operation_is_audited(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(SPEC.replace('path = "uploads"', 'path = "gone"'))
    paths = Paths(tmp_path)
    paths.ensure()
    store = open_store(None, paths.state)
    try:
        def spec() -> Any:
            return load_spec(tmp_path / "shipyard.toml")

        service = BackupService(store=store, secrets=SecretStore(paths.state), paths=paths, load_spec=spec,
                                clock=SystemClock())
        routes = read_routes(ReadContext(store, paths, SystemClock(), spec, service))
        ran = _drain(routes[("POST", "/v1/backups/run")]({"env": "prod"}, {}, SimpleNamespace(performer="cron")))
        assert ran[-1]["event"] == "result" and not ran[-1]["result"][0]["ok"]
        (row,) = store.list_audit("prod")
        assert (row.action, row.performer, row.detail) == (  # the source path is missing: the run failed
            "backup_run", "cron", {"outcome": "failed", "failed": ["uploads"]})
        with pytest.raises(ShipyardError, match="nowhere"):
            asyncio.run(routes[("POST", "/v1/backups/forget")]({"env": "nowhere"}, {}, SimpleNamespace(performer="x")))
        assert store.list_audit("nowhere")[0].detail["outcome"] == "failed"  # type: ignore[index]
    finally:
        store.close()
