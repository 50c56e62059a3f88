"""Per-environment shared dirs and the clean instance environment, through the real control plane."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sandbox import free_port  # examples/ is on sys.path (conftest)

from .conftest import Project, make_project

DUMP = """\
import json, os
from pathlib import Path
Path("instance", f"env-{os.environ['SHIPYARD_INSTANCE']}.json").write_text(json.dumps(dict(os.environ)))
"""
# The documented base, what the spec and shipyard set, and what a shell or Python may add themselves.
ALLOWED = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR", "PYTHONUNBUFFERED", "PORT",
           "SHIPYARD_ENV", "SHIPYARD_RELEASE", "SHIPYARD_INSTANCE", "GREETING", "PWD", "OLDPWD", "SHLVL", "_",
           "LC_CTYPE"}


def test_two_environments_keep_their_own_shared_dirs_and_see_only_the_base_environment(tmp_path: Path) -> None:
    p: Project = make_project(tmp_path)
    fake_venv = tmp_path / "fake-venv"
    (fake_venv / "bin").mkdir(parents=True)
    ours = os.path.dirname(sys.executable)
    p.env.update(LEAK_ME="1", VIRTUAL_ENV=str(fake_venv), PATH=f"{fake_venv / 'bin'}{os.pathsep}{p.env['PATH']}")
    try:
        p.write_spec(replicas=1, extra=f"\n[environments.production]\nport = {free_port()}\n")
        spec = (p.dir / "shipyard.toml").read_text()
        (p.dir / "shipyard.toml").write_text(spec.replace('run = "python3 app.py"',
                                                          'run = "python3 dumpenv.py && exec python3 app.py"'))
        (p.dir / "dumpenv.py").write_text(DUMP)
        p.commit("v1")
        p.ok("up", "--detach", timeout=90)
        for env in ("staging", "production"):
            result: Any = p.json("deploy", "--env", env)
            assert result["outcome"] == "succeeded", result
        shared = p.dir / ".shipyard" / "shared"
        for env in ("staging", "production"):
            files = sorted((shared / env / "instance").iterdir())
            assert files and all(f.name.startswith(f"env-{env}-") for f in files), files
            seen = json.loads(files[0].read_text())
            assert seen["SHIPYARD_ENV"] == env and seen["GREETING"] == "hello"
            # A pyenv shim standing in for python3 exports its own PYENV_* on the way: not from `shipyard up`.
            assert {k for k in set(seen) - ALLOWED if "PYENV" not in k} == set(), set(seen) - ALLOWED
            assert "LEAK_ME" not in seen and "VIRTUAL_ENV" not in seen
            path = seen["PATH"].split(os.pathsep)
            assert str(fake_venv / "bin") not in path and ours not in path
    finally:
        if p.control_pid():
            p.cli("down", timeout=120)
        p.kill_everything()
