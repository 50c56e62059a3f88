"""Backups and drills notify through the routes: a scheduled backup that fails is delivered within a
minute of the failed run; a drill that misses its RTO is delivered with the objective it missed. Real
backups (files source, local repository), the real scheduler on a test clock, the real outbox posting to
a local HTTP server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shipyard.control.backups import BackupService, start_scheduler
from shipyard.control.notify import Notifier
from shipyard.control.notify_outbox import Outbox
from shipyard.control.paths import Paths
from shipyard.control.specwatch import SpecWatch
from shipyard.primitives.clock import ManualClock, SystemClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

from .conftest import Recorder, wait_until

SPEC = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"

[environments.prod]
port = 8301
[environments.prod.backup]
repository = "{repo}/prod"
schedule = "*/5 * * * *"
sources = [{{ kind = "files", name = "uploads", path = "missing-dir" }}]

[environments.staging]
port = 8302
[environments.staging.backup]
repository = "{repo}/staging"
rto = "1ms"
sources = [{{ kind = "files", name = "uploads", path = "data" }}]

[notifications]
[[notifications.receivers]]
name = "ops"
kind = "webhook"
url = "{url}"
[[notifications.routes]]
match = {{ severity = "critical" }}
receivers = ["ops"]
"""


def test_failed_scheduled_backup_and_missed_drill_notify(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "data").mkdir()
    # 4 MiB that do not compress: restoring them (read, decrypt, decompress, hash, write) takes well over the
    # 1 ms objective on any machine; 10 kB of one letter restored in under 1 ms on a fast one.
    (tmp_path / "data" / "a.bin").write_bytes(os.urandom(4 << 20))
    (tmp_path / "shipyard.toml").write_text(SPEC.format(repo=tmp_path / "repo", url=recorder.url("/backups")))
    paths = Paths(tmp_path)
    paths.state.mkdir()
    store = open_store(None, paths.state)
    clock = ManualClock(1_700_000_100.0)
    secrets = SecretStore(paths.state)
    watch = SpecWatch(tmp_path)
    notifier = Notifier(store=store, clock=clock, specs=watch)
    outbox = Outbox(store=store, clock=SystemClock(), specs=watch, secrets=secrets)
    notifier.on_delivery = outbox.poke
    service = BackupService(store=store, secrets=secrets, paths=paths, load_spec=lambda: load_spec(tmp_path / "shipyard.toml"),
                            clock=clock, notify=notifier.lifecycle)

    async def go() -> None:
        sender = asyncio.create_task(outbox.run_forever())
        sched = start_scheduler(service)
        assert sched is not None
        try:
            name, due = sched.next_due()  # type: ignore[misc]
            assert name == "backup:prod"
            clock.advance(due - clock.time())
            assert await sched.run_pending() == ["backup:prod"]
            assert await asyncio.to_thread(wait_until, lambda: store.list_deliveries(), 20)
            (d,) = store.list_deliveries()
            assert d.created_at - due <= 60, "queued within a minute of the failed run"
            await asyncio.to_thread(wait_until, lambda: store.delivery(d.id).status == "delivered", 15)  # type: ignore[union-attr]
            assert store.delivery(d.id).status == "delivered"  # type: ignore[union-attr]

            # The drill (a real clock: its RTO is measured): a backup, then a restore that misses 1 ms.
            real = BackupService(store=store, secrets=secrets, paths=paths, load_spec=service.load_spec,
                                 clock=SystemClock(), notify=notifier.lifecycle)
            results, _ = await real.run("staging")
            assert all(r.ok for r in results)
            drills, _ = await real.drill("staging")
            assert not all(r.ok for r in drills)
            await asyncio.to_thread(wait_until, lambda: len(recorder.at("/backups")) >= 2, 15)
        finally:
            sender.cancel()
            await sched.aclose()

    asyncio.run(go())
    failed, drill = recorder.at("/backups")[:2]
    a = failed["alerts"][0]
    assert a["labels"]["alertname"] == "BackupRunFailed" and a["labels"]["env"] == "prod"
    assert "scheduled backup of prod failed" in a["annotations"]["summary"]
    assert "uploads" in a["annotations"]["summary"]
    b = drill["alerts"][0]
    assert b["labels"]["alertname"] == "DrillMissedObjectives" and b["labels"]["env"] == "staging"
    assert "uploads: rto:" in b["annotations"]["description"] and "objective 1ms" in b["annotations"]["description"]
