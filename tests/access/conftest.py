"""Access fixtures: one running control plane with a staging and an approval-gated prod environment,
driven through the real CLI as several identities (SHIPYARD_TOKEN)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, free_port, make_project  # noqa: E402

PROD = """
[environments.prod]
port = {port}
replicas = 1

[environments.prod.approval]
required = 1
prevent_self_review = true
timeout = "1h"
"""


class Actors:
    """The project, and every CLI output seen (the token leak test greps them)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.outputs: list[str] = []
        self.tokens: dict[str, str] = {}

    def run(self, token: str | None, *args: str, performer: str | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        env = dict(self.project.env)
        if token is not None:
            env["SHIPYARD_TOKEN"] = token
        if performer is not None:
            env["SHIPYARD_PERFORMER"] = performer
        proc = subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=self.project.dir, env=env,
                              capture_output=True, text=True, timeout=timeout)
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def popen(self, token: str | None, *args: str) -> subprocess.Popen[str]:
        env = dict(self.project.env)
        if token is not None:
            env["SHIPYARD_TOKEN"] = token
        return subprocess.Popen([sys.executable, "-m", "shipyard", *args], cwd=self.project.dir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def create(self, name: str, role: str, *envs: str) -> str:
        args = ["token", "create", name, "--role", role, *[x for e in envs for x in ("--env", e)], "--json"]
        proc = subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=self.project.dir,
                              env=self.project.env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        self.outputs.append(proc.stderr)  # stdout is the one place the token is shown
        token = str(json.loads(proc.stdout)["token"])
        self.tokens[name] = token
        return token

    def as_json(self, token: str | None, *args: str, code: int = 0) -> object:
        proc = self.run(token, *args, "--json")
        assert proc.returncode == code, f"{args} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def actors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Actors]:
    proj = make_project(tmp_path_factory.mktemp("access"))
    proj.write_spec(replicas=1, extra=PROD.format(port=free_port()))
    proj.commit("v1")
    try:
        proj.ok("up", "--detach", timeout=90)
        yield Actors(proj)
    finally:
        try:
            if proj.control_pid():
                proj.cli("down", timeout=120)
        finally:
            proj.kill_everything()
