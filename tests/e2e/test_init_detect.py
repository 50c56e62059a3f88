"""`shipyard init` on small generated projects: the framework and server detected, free router ports,
`.shipyard/` ignored by git."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def init(root: Path, *args: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "shipyard", "init", *args, "--json"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    spec = tomllib.loads((root / "shipyard.toml").read_text())
    assert spec["app"]["run"] == doc["run"]
    return doc


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


FASTAPI = "from fastapi import FastAPI\n\napi = FastAPI()\n\n\n@api.get('/health')\ndef health():\n    return {}\n"
FLASK = "import flask\n\napp = flask.Flask(__name__)\n"
FLASK_FACTORY = "from flask import Flask\n\n\ndef create_app():\n    return Flask(__name__)\n"
MANAGE = ('import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n'
          "from django.core.management import execute_from_command_line\n")


@pytest.mark.parametrize(("files", "framework", "server", "run"), [
    ({"main.py": FASTAPI, "requirements.txt": "fastapi>=0.100\nuvicorn[standard]==0.30  # server\n"},
     "fastapi", "uvicorn", "uvicorn main:api --host 127.0.0.1 --port $PORT"),
    ({"main.py": FASTAPI, "requirements.txt": "fastapi\nHypercorn\n"},
     "fastapi", "hypercorn", "hypercorn main:api --bind 127.0.0.1:$PORT"),
    ({"app/__init__.py": "", "app/main.py": FASTAPI.replace("api =", "app: FastAPI =").replace("@api", "@app"),
      "requirements.txt": "uvicorn\n"}, "fastapi", "uvicorn", "uvicorn app.main:app --host 127.0.0.1 --port $PORT"),
    ({"app.py": FLASK, "requirements.txt": "Flask==3.0\ngunicorn\n"},
     "flask", "gunicorn", "gunicorn -b 127.0.0.1:$PORT app:app"),
    ({"app.py": FLASK_FACTORY, "requirements.txt": "flask\nwaitress\n"},
     "flask", "waitress", "waitress-serve --listen=127.0.0.1:$PORT 'app:create_app()'"),
    ({"app.py": FLASK}, "flask", "flask", "flask --app app:app run --host 127.0.0.1 --port $PORT"),
    ({"manage.py": MANAGE, "mysite/wsgi.py": "", "requirements.txt": "Django\ngunicorn\n"},
     "django", "gunicorn", "gunicorn -b 127.0.0.1:$PORT mysite.wsgi"),
    ({"manage.py": MANAGE, "pyproject.toml": '[project]\nname = "x"\ndependencies = ["django", "uvicorn"]\n'},
     "django", "uvicorn", "uvicorn mysite.asgi:application --host 127.0.0.1 --port $PORT"),
    ({"server.py": "print('hi')\n"}, None, None, "python3 server.py"),
])
def test_the_framework_and_server_are_detected(tmp_path: Path, files: dict[str, str], framework: str | None,
                                               server: str | None, run: str) -> None:
    doc = init(project(tmp_path, files))
    assert (doc["framework"], doc["server"], doc["run"]) == (framework, server, run), doc


def test_a_server_the_requirements_do_not_name_is_noted(tmp_path: Path) -> None:
    root = project(tmp_path, {"main.py": FASTAPI, "requirements.txt": "fastapi\n"})
    proc = subprocess.run([sys.executable, "-m", "shipyard", "init"], cwd=root, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "detected a fastapi app (main), served by uvicorn" in proc.stdout, proc.stdout
    assert "note: requirements.txt does not name uvicorn: add it" in proc.stdout, proc.stdout


@pytest.fixture
def busy_defaults() -> Iterator[set[int]]:
    """Ports 8200 and 8300 held (when nobody else holds them already)."""
    held: list[socket.socket] = []
    for port in (8200, 8300):
        s = socket.socket()
        try:
            s.bind(("0.0.0.0", port))
            s.listen()
            held.append(s)
        except OSError:
            s.close()  # in use already: busy all the same
    try:
        yield {8200, 8300}
    finally:
        for s in held:
            s.close()


def test_ports_are_free_ones_and_state_is_ignored(tmp_path: Path, busy_defaults: set[int]) -> None:
    root = project(tmp_path, {"app.py": FLASK, ".gitignore": "__pycache__/"})
    doc = init(root)
    ports = doc["ports"]
    assert ports["staging"] not in busy_defaults and ports["production"] not in busy_defaults, ports
    assert ports["staging"] != ports["production"]
    spec = tomllib.loads((root / "shipyard.toml").read_text())
    assert spec["environments"]["staging"]["port"] == ports["staging"]
    assert doc["gitignore"] == "added"
    assert (root / ".gitignore").read_text() == "__pycache__/\n.shipyard/\n"
    again = init(root, "--force")
    assert again["gitignore"] == "present" and (root / ".gitignore").read_text().count(".shipyard") == 1
    fresh = project(tmp_path / "b", {"app.py": FLASK})
    assert init(fresh)["gitignore"] == "created" and (fresh / ".gitignore").read_text() == ".shipyard/\n"
