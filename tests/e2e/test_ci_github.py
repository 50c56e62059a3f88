"""shipyard ci github writes a workflow that actionlint (the real checker, shipped by a PyPI package) accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Project

ACTIONLINT = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")


def test_the_workflow_passes_actionlint(project: Project) -> None:
    spec = project.dir / "shipyard.toml"
    spec.write_text(spec.read_text() + f"\n[environments.prod]\nport = {project.port + 1}\n")
    out = project.json("ci", "github")
    path = Path(out["path"])  # type: ignore[index]
    assert path == project.dir / ".github" / "workflows" / "shipyard.yml"
    text = path.read_text()
    assert "shipyard deploy --env staging --ref" in text and "shipyard deploy --env prod --from staging" in text
    assert "environment: prod" in text and "SHIPYARD_PERFORMER: ${{ github.actor }}" in text
    # Deploys reach the control plane over its API; the tests of a pull request never see its token.
    assert "SHIPYARD_URL: ${{ secrets.SHIPYARD_URL }}" in text and "self-hosted" not in text
    assert "SHIPYARD_TOKEN" not in text.split("\n  test:")[1].split("\n  staging:")[0]
    lint = subprocess.run([ACTIONLINT, str(path)], capture_output=True, text=True, cwd=project.dir)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    again = project.cli("ci", "github")
    assert again.returncode == 2 and "--force" in again.stderr
    assert project.cli("ci", "github", "--force", "--test", "pytest -q -k 'not slow'").returncode == 0
    lint = subprocess.run([ACTIONLINT, str(path)], capture_output=True, text=True, cwd=project.dir)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("args, says", [
    (["--staging", "nowhere"], "unknown environment 'nowhere'"),
    (["--prod", "staging"], "both 'staging'"),
])
def test_bad_input_is_exit_2(project: Project, args: list[str], says: str) -> None:
    proc = project.cli("ci", "github", *args)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
