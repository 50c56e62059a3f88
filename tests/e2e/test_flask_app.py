"""A real third-party app (Flask under gunicorn) whose SQLite data lives in a shared dir."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path
from typing import Any

from .conftest import EXAMPLES, Project, make_project


def _post(port: int, text: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/notes", body=json.dumps({"text": text}), headers={"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status


def _notes(p: Project) -> list[str]:
    status, body = p.get("/notes")
    assert status == 200, body
    return [n["text"] for n in body["notes"]]  # type: ignore[index, union-attr]


def test_flask_gunicorn_data_survives_deploy_and_rollback(tmp_path: Path) -> None:
    p = make_project(tmp_path)
    try:
        (p.dir / "app.py").unlink()
        for f in ("app.py", "gunicorn.conf.py", "requirements.txt"):
            if (EXAMPLES / "flaskapp" / f).exists():
                shutil.copy(EXAMPLES / "flaskapp" / f, p.dir / f)
        spec = (EXAMPLES / "flaskapp" / "shipyard.toml").read_text().replace("port = 8300", f"port = {p.port}")
        (p.dir / "shipyard.toml").write_text(spec.replace('interval = "1s"', 'interval = "0.3s"'))
        p.commit("v1")
        p.ok("up", "--detach", timeout=90)
        first: Any = p.json("deploy", "--env", "staging")
        assert first["outcome"] == "succeeded", first
        assert _post(p.port, "before-deploy") in (200, 201)
        p.commit("v2")
        second: Any = p.json("deploy", "--env", "staging")
        assert second["outcome"] == "succeeded", second
        assert "before-deploy" in _notes(p)
        assert _post(p.port, "after-deploy") in (200, 201)
        back: Any = p.json("rollback", "--env", "staging")
        assert back["outcome"] == "succeeded", back
        assert _notes(p)[:2] == ["before-deploy", "after-deploy"]
        assert (p.dir / ".shipyard" / "shared" / "staging" / "instance" / "app.db").exists()
        # Its own venv (from its build, the second one from the build cache), not shipyard's.
        log = (p.dir / ".shipyard" / "releases" / second["release"] / ".shipyard-build.log").read_text()
        assert "[build cache] hit: .venv" in log, log
    finally:
        if p.control_pid():
            p.cli("down", timeout=120)
        p.kill_everything()
