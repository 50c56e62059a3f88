"""shipyard lock: a held lock refuses deploys (exit 3) naming its holder and message; rollbacks pass."""

from __future__ import annotations

from typing import Any

from .conftest import Project


def test_a_manual_lock_holds_deploys_and_names_its_holder(running: Project) -> None:
    assert running.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    running.commit("v2")
    assert running.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    env = {**running.env, "SHIPYARD_PERFORMER": "alice"}
    import subprocess
    import sys

    took = subprocess.run([sys.executable, "-m", "shipyard", "lock", "acquire", "--env", "staging", "-m",
                           "db maintenance"], cwd=running.dir, env=env, capture_output=True, text=True)
    assert took.returncode == 0 and "alice" in took.stdout, took.stderr
    again = running.cli("lock", "acquire", "--env", "staging", "-m", "me too")
    assert again.returncode == 3 and "alice" in again.stderr and "db maintenance" in again.stderr
    running.commit("v3")
    refused = running.cli("deploy", "--env", "staging")
    assert refused.returncode == 3, refused.stderr
    assert "locked by local (alice): 'db maintenance'" in refused.stderr and "lock release" in refused.stderr
    held: Any = running.json("lock", "status")
    assert [(h["env"], h["message"]) for h in held] == [("staging", "db maintenance")]
    rb: Any = running.json("rollback", "--env", "staging")
    assert rb["outcome"] == "succeeded", "a rollback is never held by a manual lock"
    assert running.ok("lock", "release", "--env", "staging").stdout.strip() == "staging unlocked"
    assert running.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    assert "was not locked" in running.ok("lock", "release", "--env", "staging").stdout
    missing = running.cli("lock", "acquire", "--env", "nowhere", "-m", "x")
    assert missing.returncode == 2 and "unknown environment 'nowhere'" in missing.stderr
