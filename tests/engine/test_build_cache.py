"""The build cache: a keyed directory reused by the next release, relocated to its path; rebuilt on a key change."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.releases import BUILD_LOG, BuiltRelease, CacheRule, build_release
from shipyard.errors import BadInput
from shipyard.primitives.clock import SystemClock

# A stand-in for a venv: made only when absent, it names its own absolute path (like a shebang) and
# records which release built it.
FAKE_ENV = ("test -d env || (mkdir -p env/bin && printf '#!%s/env/bin/python\\n' \"$PWD\" > env/bin/tool"
            " && echo \"$SHIPYARD_RELEASE\" > env/built-by && head -c 4096 /dev/urandom > env/blob.bin)")
RULE = CacheRule(path="env", key=("requirements.txt",))


def build(repo: Any, state: Path, cmds: list[str], cache: list[CacheRule]) -> BuiltRelease:
    return build_release(project_dir=repo.path, state_dir=state, ref="HEAD", build_cmds=cmds, shared=[],
                         clock=SystemClock(), cache=cache)


def test_a_matching_key_restores_the_dir_at_the_new_path_and_a_change_rebuilds(
    example_repo: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    example_repo.commit("reqs", {"requirements.txt": "six==1.16.0\n"})
    r1 = build(example_repo, state, [FAKE_ENV], [RULE])
    assert "[build cache] miss: env" in (r1.path / BUILD_LOG).read_text()
    assert "[build cache] saved: env" in (r1.path / BUILD_LOG).read_text()

    example_repo.commit("code only", {"VERSION": "v2\n"})
    r2 = build(example_repo, state, [FAKE_ENV], [RULE])
    assert "[build cache] hit: env" in (r2.path / BUILD_LOG).read_text()
    assert (r2.path / "env" / "built-by").read_text().strip() == r1.id  # restored, not rebuilt
    assert (r2.path / "env" / "bin" / "tool").read_text() == f"#!{r2.path}/env/bin/python\n"  # relocated
    assert (r1.path / "env" / "bin" / "tool").read_text() == f"#!{r1.path}/env/bin/python\n"  # untouched
    assert os.access(r2.path / "env" / "bin" / "tool", os.X_OK) is False  # modes as they were
    # Files that do not name the path are hard links: no extra disk.
    assert (r2.path / "env" / "blob.bin").stat().st_ino == (r1.path / "env" / "blob.bin").stat().st_ino

    shutil.rmtree(r1.path)  # pruned: the entry still holds its files
    example_repo.commit("new requirement", {"requirements.txt": "six==1.15.0\n"})
    r3 = build(example_repo, state, [FAKE_ENV], [RULE])
    assert "[build cache] miss: env" in (r3.path / BUILD_LOG).read_text()
    assert (r3.path / "env" / "built-by").read_text().strip() == r3.id
    example_repo.commit("back to the first", {"requirements.txt": "six==1.16.0\n"})
    r4 = build(example_repo, state, [FAKE_ENV], [RULE])
    assert (r4.path / "env" / "built-by").read_text().strip() == r1.id
    assert (r4.path / "env" / "blob.bin").read_bytes() == (r2.path / "env" / "blob.bin").read_bytes()


def test_a_failed_build_saves_nothing_and_bad_rules_are_refused(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(Exception, match="build failed"):
        build(example_repo, state, [FAKE_ENV, "exit 1"], [RULE])
    assert not (state / "cache" / "build").exists() or not list((state / "cache" / "build").iterdir())
    with pytest.raises(BadInput, match="app.build_cache"):
        build(example_repo, state, [], [CacheRule(path="../out", key=("requirements.txt",))])


def test_a_real_venv_from_the_cache_runs_at_its_new_path(example_repo: Any, tmp_path: Path) -> None:
    # Real pip from PyPI, one tiny package (bench/build_cache.py does it with FastAPI).
    state = tmp_path / "state"
    cmds = ["test -x .venv/bin/python || python3 -m venv .venv",
            ".venv/bin/pip install -q --disable-pip-version-check -r requirements.txt"]
    rule = CacheRule(path=".venv", key=("requirements.txt",))
    example_repo.commit("reqs", {"requirements.txt": "six==1.16.0\n"})
    r1 = build(example_repo, state, cmds, [rule])
    example_repo.commit("v2", {"VERSION": "v2\n"})
    r2 = build(example_repo, state, cmds, [rule])
    assert "[build cache] hit: .venv" in (r2.path / BUILD_LOG).read_text()
    shutil.rmtree(r1.path)
    probe = "import six, sys; print(sys.prefix); print(six.__version__)"
    out = subprocess.run([str(r2.path / ".venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(r2.path / ".venv"), "1.16.0"]
    # Its scripts run from it too (their shebangs name this release's venv).
    assert (r2.path / ".venv" / "bin" / "pip").read_text().splitlines()[0] == f"#!{r2.path}/.venv/bin/python3"
    subprocess.run([str(r2.path / ".venv" / "bin" / "pip"), "--version"], capture_output=True, check=True)
