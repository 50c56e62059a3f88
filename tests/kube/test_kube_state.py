"""Kube deploys in the state database (control/kube/state.py), on a real SQLite state database: the row,
its steps and durations, the outcome, the lock, the environment's serving release."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shipyard.control.kube.deployer import KubeResult
from shipyard.control.kube.state import StateDB
from shipyard.errors import DeployFailed, LockHeld
from shipyard.primitives.clock import ManualClock


def test_deploys_rollbacks_and_failures_are_recorded_with_steps_and_lock(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    with StateDB(tmp_path / "state") as db:
        hist = db.history(clock, "local (alice)")

        async def ok() -> KubeResult:
            clock.advance(2.5)
            return KubeResult("prod", "r1", "deploy", outcome="succeeded", previous=None,
                              steps=[{"kind": "apply", "status": "succeeded", "duration_s": 0.5},
                                     {"kind": "wait_rollout", "status": "succeeded", "duration_s": 2.0}])

        res, first = asyncio.run(hist.run("prod", "deploy", "r1", "rolling", [], ok))
        assert res.outcome == "succeeded" and db.serving("prod") == "r1"

        async def failed() -> KubeResult:
            # A second deploy through the same database meanwhile is refused by the lock.
            with pytest.raises(LockHeld, match="already running on prod"):
                await hist.run("prod", "deploy", "r3", "rolling", [], ok)
            return KubeResult("prod", "r2", "deploy", outcome="failed", reason="ProgressDeadlineExceeded", previous="r1",
                              steps=[{"kind": "wait_rollout", "status": "failed", "duration_s": 60.0},
                                     {"kind": "restore", "status": "succeeded", "release": "r1"}])

        _, second = asyncio.run(hist.run("prod", "deploy", "r2", "rolling", [], failed))

        async def broken() -> KubeResult:
            raise DeployFailed("API server unreachable")

        with pytest.raises(DeployFailed):
            asyncio.run(hist.run("prod", "rollback", "r0", "rolling", [], broken))

        rows = db.rows("prod", 10)
        assert [(r["deployment"], r["kind"], r["release"], r["outcome"]) for r in rows] == [
            (second + 1, "rollback", "r0", "failed"), (second, "deploy", "r2", "rolled_back"),
            (first, "deploy", "r1", "succeeded")]
        assert rows[0]["reason"] == "API server unreachable" and rows[1]["reason"] == "ProgressDeadlineExceeded"
        assert rows[2]["performer"] == "local (alice)" and rows[2]["duration_s"] == 2.5
        assert [(s["name"], s["status"], s["duration_s"], s["started_at"]) for s in rows[2]["steps"]] == [
            ("apply", "succeeded", 0.5, 1000.0), ("wait_rollout", "succeeded", 2.0, 1000.5)]
        assert db.serving("prod") == "r1"  # neither the failed deploy nor the failed rollback moved it
        assert db.store.running_deployment("prod") is None  # every lock released
        audit = db.store.list_audit(env="prod")
        assert [(a.performer, a.action, a.target) for a in audit] == [
            ("local (alice)", "deploy", f"deployment {first}"), ("local (alice)", "deploy", f"deployment {second}"),
            ("local (alice)", "rollback", f"deployment {second + 1}")]
