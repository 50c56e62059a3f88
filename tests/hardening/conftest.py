"""Hardening fixtures: a throwaway git project (examples/sandbox.py) driven through the real CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project  # noqa: E402


def _cleanup(proj: Project) -> None:
    try:
        if proj.control_pid():
            proj.cli("down", timeout=120)
    finally:
        proj.kill_everything()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = make_project(tmp_path)
    proj.write_spec(replicas=1)
    proj.commit("v1")
    try:
        yield proj
    finally:
        _cleanup(proj)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One running control plane shared by a module's tests (requests that change nothing)."""
    proj = make_project(tmp_path_factory.mktemp("plane"))
    proj.write_spec(replicas=1)
    proj.commit("v1")
    try:
        proj.ok("up", "--detach", timeout=90)
        yield proj
    finally:
        _cleanup(proj)
