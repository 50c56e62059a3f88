"""The documented base environment of an instance: nothing else from `shipyard up` gets through."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shipyard.control.instancespec import BASE_VARS, InstanceSpec, base_environment, instance_environment
from shipyard.primitives.probe import Probe

OURS = os.path.dirname(sys.executable)


def _spec(cwd: Path, **env_vars: str) -> InstanceSpec:
    return InstanceSpec(id="staging-r1-0", env="staging", release="r1", index=0, cmd="true", cwd=cwd,
                        env_vars=dict(env_vars), port=9100, log_path=cwd / "x.log", health=Probe(path="/health"))


def test_base_is_the_documented_variables_and_the_system_path(tmp_path: Path) -> None:
    inherited = {"PATH": f"{OURS}:/opt/fake-venv/bin:/usr/local/bin:/usr/bin", "VIRTUAL_ENV": "/opt/fake-venv",
                 "LEAK_ME": "1", "SHIPYARD_MASTER_KEY": "k", "HOME": "/home/op", "LANG": "C.UTF-8", "TZ": "UTC",
                 "USER": "op", "LOGNAME": "op", "TMPDIR": "/var/tmp", "PYTHONPATH": "/x", "LC_ALL": "C.UTF-8"}
    env = base_environment(tmp_path, inherited)
    assert set(env) == {*BASE_VARS, "PATH", "PYTHONUNBUFFERED"}
    assert env["PATH"] == "/usr/local/bin:/usr/bin"
    assert env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/home/op" and env["TMPDIR"] == "/var/tmp"


def test_the_release_venv_comes_first_and_the_spec_and_shipyard_win(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    env = instance_environment(_spec(tmp_path, GREETING="hi"), base={"PATH": "/usr/bin", "LEAK_ME": "1"})
    assert env["PATH"] == f"{tmp_path / '.venv' / 'bin'}:/usr/bin"
    assert "LEAK_ME" not in env and env["GREETING"] == "hi"
    assert (env["PORT"], env["SHIPYARD_ENV"], env["SHIPYARD_RELEASE"]) == ("9100", "staging", "r1")
    # Missing account variables come from the password database; an empty PATH is the default one.
    bare = base_environment(tmp_path / "none", {})
    assert bare["HOME"] and bare["USER"] == bare["LOGNAME"] and bare["PATH"] == os.defpath
