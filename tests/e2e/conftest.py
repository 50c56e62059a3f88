"""End-to-end fixtures: a throwaway git project (examples/sandbox.py) driven through the real CLI.

Everything is real: the control plane, the router, instance processes, HTTP on loopback. Teardown
runs ``shipyard down`` and then kills anything the project left behind, so a failing test cannot
leak processes into the next one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import EXAMPLES, Project, git, make_project, wait_for  # noqa: E402

__all__ = ["EXAMPLES", "Project", "git", "make_project", "wait_for"]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = make_project(tmp_path)
    proj.write_spec()
    proj.commit("v1")
    try:
        yield proj
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()


@pytest.fixture
def running(project: Project) -> Project:
    """A project whose control plane is up."""
    project.ok("up", "--detach", timeout=90)
    return project
