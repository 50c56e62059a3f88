"""CLI output off a terminal: piped at any COLUMNS, ids, outcomes and paths stay whole; rich markup
never eats text from the spec (``[environments.staging.verify]``, ``[rollback]``); --json everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Project

BACKUP = """
[environments.staging.backup]
repository = "backups/with-a-rather-long-directory-name-for-the-repository"
retention = { keep_last = 3 }

[[environments.staging.backup.sources]]
name = "uploads"
kind = "files"
path = "uploads"
"""

SECRET = "A_SECRET_NAME_LONGER_THAN_FORTY_COLUMNS_OF_TERMINAL"
WIDTHS = (None, "40")


def piped(p: Project, columns: str | None, *args: str, code: int = 0) -> str:
    env = dict(p.env)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=p.dir, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == code, f"shipyard {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert max((len(line) for line in proc.stdout.splitlines()), default=0) < 1000, "padded to the console width"
    return proc.stdout


def has_line(out: str, *parts: str) -> bool:
    """Some line holds every part, whole (a wrapped or cut id or path would not)."""
    return any(all(part in line for part in parts) for line in out.splitlines())


@pytest.fixture
def served(running: Project) -> Project:
    running.write_spec(replicas=1, extra=BACKUP)
    (running.dir / "uploads").mkdir()
    (running.dir / "uploads" / "a.txt").write_text("hello\n")
    running.commit("v1b")
    return running


def test_reporting_commands_keep_ids_outcomes_and_paths_whole_in_a_pipe(served: Project) -> None:
    p = served
    released: list[str] = []
    for i, columns in enumerate(WIDTHS):
        p.commit(f"v{i + 2}")
        out = piped(p, columns, "deploy", "--env", "staging")
        st: Any = p.json("status", "--env", "staging")
        released.append(st["release"])
        assert has_line(out, f"deploy succeeded: staging now serves {st['release']} in"), out
    for columns, to in zip(WIDTHS, released, strict=True):
        out = piped(p, columns, "rollback", "--env", "staging", "--to", to)
        assert has_line(out, f"rollback succeeded: staging now serves {to} in"), out
    p.ok("backup", "run", "--env", "staging")
    p.ok("secrets", "set", "--env", "staging", f"{SECRET}=x")

    status: Any = p.json("status", "--env", "staging")
    history: Any = p.json("history", "--env", "staging")
    releases: Any = p.json("releases")
    backups: Any = p.json("backup", "list", "--env", "staging")
    for columns in WIDTHS:
        out = piped(p, columns, "status")
        assert has_line(out, "staging", f"release {status['release']}"), out
        for inst in status["instances"]:
            assert has_line(out, inst["id"], inst["release"], inst["state"]), out
        last = status["last_deployment"]
        assert has_line(out, f"last deployment {last['id']}: {last['kind']} of {last['release']} {last['outcome']}")

        out = piped(p, columns, "history", "--env", "staging")
        for row in history:
            assert has_line(out, str(row["deployment"]), row["kind"], row["release"], row["outcome"]), out

        out = piped(p, columns, "releases")
        for row in releases:
            assert has_line(out, row["release"], row["commit"][:10]), out

        out = piped(p, columns, "verify", "--env", "staging", "--duration", "1s", "--rate", "20")
        report = next(line for line in out.splitlines() if line.startswith("report: "))[len("report: "):]
        assert report.endswith(".html") and p.dir / ".shipyard" / "reports" in Path(report).parents, out
        assert has_line(out, "GO")

        out = piped(p, columns, "backup", "list", "--env", "staging")
        assert has_line(out, f"repository {backups['repository']}"), out
        for b in backups["backups"]:
            assert has_line(out, b["source"], b["id"]), out

        out = piped(p, columns, "config", "show", "--env", "staging")
        assert has_line(out, f'file = "{p.dir / "shipyard.toml"}"') and has_line(out, f"[variables.{SECRET}]"), out

        out = piped(p, columns, "secrets", "list", "--env", "staging")
        assert SECRET in out.splitlines(), out


def test_markup_in_messages_prints_as_written(served: Project) -> None:
    served.json("deploy", "--env", "staging")
    out = piped(served, None, "verify", "--env", "staging", "--duration", "1s", "--rate", "10")
    assert "staging has no [environments.staging.verify] table: default load, no thresholds" in out, out
    served.commit("v2")
    out = piped(served, None, "deploy", "--env", "staging", "--strategy", "canary", "--plan")
    assert "rollback triggers: none ([rollback] not set)" in out, out


def test_json_on_every_reporting_command(served: Project) -> None:
    p = served
    p.json("deploy", "--env", "staging")
    p.commit("v2")
    dep: Any = p.json("deploy", "--env", "staging")
    assert dep["outcome"] == "succeeded"
    for args in (("status",), ("status", "--env", "staging"), ("history", "--env", "staging"), ("releases",),
                 ("deploy", "--env", "staging", "--plan"), ("rollback", "--env", "staging", "--plan"),
                 ("verify", "--env", "staging", "--duration", "1s", "--rate", "10"),
                 ("backup", "run", "--env", "staging"), ("backup", "list", "--env", "staging"),
                 ("backup", "verify", "--env", "staging"), ("backup", "forget", "--env", "staging", "--dry-run"),
                 ("config", "show", "--env", "staging"), ("secrets", "list", "--env", "staging"),
                 ("secrets", "set", "--env", "staging", "K=v"), ("secrets", "unset", "--env", "staging", "K"),
                 ("up", "--detach")):
        doc = p.json(*args)
        assert doc is not None and json.dumps(doc), args
    assert p.json("up", "--detach")["already_running"] is True  # type: ignore[index]
