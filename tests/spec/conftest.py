from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLE = '''\
[app]
name = "svc"
run = "python3 app.py"          # started with PORT set; any command works (gunicorn, uvicorn, a binary)
build = ["python3 -m compileall -q ."]   # optional, run inside the new release
shared = ["instance"]           # optional: dirs kept across releases, linked into each one

[app.health]
path = "/health"
interval = "1s"
timeout = "1s"
retries = 3
start_period = "10s"

[app.ready]
path = "/ready"

[defaults]
replicas = 2
strategy = "blue-green"
keep_releases = 5

[defaults.env]
GREETING = "hello"

[environments.staging]
port = 8200
replicas = 3
'''

MINIMAL_APP = '''\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
'''


@pytest.fixture
def write_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a spec file into a fresh project dir (also the cwd) and return its path."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "shipyard.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def example_toml() -> str:
    """The shipyard.toml of the foundation issue, exactly as written there."""
    return EXAMPLE


@pytest.fixture
def minimal_app() -> str:
    return MINIMAL_APP
