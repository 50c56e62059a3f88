"""`[logs]` retention: size (the supervisor's rotator, also for the control plane's own log) and age
(rotated copies and dead instances' logs), and its bounds at the config boundary (exit 2, key path)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from shipyard.cli.main import run
from shipyard.control.logretention import prune_aged
from shipyard.control.supervisor import Supervisor
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.spec import load_spec

SPEC = ('[app]\nname = "svc"\nrun = "python3 app.py"\n[app.health]\npath = "/health"\n'
        "[environments.prod]\nport = 8301\n")
DAY = 86400.0


def test_age_prunes_old_copies_and_dead_instances_only(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    logs = tmp_path / "logs"
    files = {
        "prod/live-0.log": 30, "prod/live-0.log.1": 20, "prod/live-0.log.2": 1,  # days old
        "prod/gone-0.log": 20, "prod/gone-1.log": 2,
        "router/access.log": 30, "router/access.log.1": 20, "control.log": 30, "control.log.3": 15,
    }
    for rel, age in files.items():
        p = logs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x\n")
        os.utime(p, (now - age * DAY, now - age * DAY))
    gone = prune_aged(logs, 14 * DAY, now, live=[logs / "prod" / "live-0.log"])
    assert sorted(str(p.relative_to(logs)) for p in gone) == [
        "control.log.3", "prod/gone-0.log", "prod/live-0.log.1", "router/access.log.1"]
    left = sorted(str(p.relative_to(logs)) for p in logs.rglob("*") if p.is_file())
    assert left == ["control.log", "prod/gone-1.log", "prod/live-0.log", "prod/live-0.log.2", "router/access.log"]


def test_configured_size_rotates_the_control_log(tmp_path: Path) -> None:
    log = tmp_path / "control.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # as `up` gives it to the daemon

    async def run() -> None:
        sup = Supervisor(clock=SystemClock(), on_change=lambda st: None, on_event=lambda *a: None)
        sup.configure_logs(64 * 1024, 2, also=[log])
        try:
            line = b"x" * 99 + b"\n"
            for _ in range(3):
                os.write(fd, line * 1000)  # 100 kB: over the limit each time
                deadline = time.monotonic() + 10
                while log.stat().st_size > 64 * 1024 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
        finally:
            sup.rotator.stop(wait=2)
    try:
        asyncio.run(run())
    finally:
        os.close(fd)
    assert log.stat().st_size <= 64 * 1024
    copies = sorted(p.name for p in tmp_path.iterdir() if p.name != "control.log")
    assert copies == ["control.log.1", "control.log.2"]  # keep = 2: the oldest went
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total < 3 * 100_000  # one 100 kB burst was dropped with the third copy


@pytest.mark.parametrize(("logs", "where"), [
    ('max_size = "1KiB"', "logs.max_size"),
    ('max_size = "lots"', "logs.max_size"),
    ("keep = 1000", "logs.keep"),
    ('max_age = "10m"', "logs.max_age"),
    ('max_age = "a fortnight"', "logs.max_age"),
    ("rotate = true", "logs.rotate"),
])
def test_bad_logs_settings_exit_2_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], logs: str, where: str) -> None:
    (tmp_path / "shipyard.toml").write_text(SPEC + "[logs]\n" + logs + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["shipyard", "export", "prometheus"])
    with pytest.raises(SystemExit) as exc:
        run()  # the entry point: a ShipyardError is printed and exits with its code
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert where in err and "Traceback" not in err


def test_logs_defaults_and_units(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "shipyard.toml")
    assert (spec.logs.max_size, spec.logs.keep, spec.logs.max_age) == (10 * 2**20, 5, 14 * DAY)
    (tmp_path / "shipyard.toml").write_text(SPEC + '[logs]\nmax_size = "50MiB"\nkeep = 3\nmax_age = "30d"\n')
    spec = load_spec(tmp_path / "shipyard.toml")
    assert (spec.logs.max_size, spec.logs.keep, spec.logs.max_age) == (50 * 2**20, 3, 30 * DAY)
