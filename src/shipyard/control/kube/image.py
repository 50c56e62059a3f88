"""``shipyard image build``: a release's checked-out tree → an OCI image built by the Docker engine, tagged
``<repository>:<release id>``, pushed, its digest recorded in the state database (``release_images``) for
kubernetes deploys of the release to reference as ``repository@sha256:…``.

The tree comes from engine/releases (``git archive`` of the ref, nothing else of the working copy); the
``app.build`` commands run inside the image (the generated Dockerfile's ``RUN`` lines), not on this machine.
The engine is the ``docker`` CLI against ``$DOCKER_HOST`` (default: the system engine): thin, every call
bounded in time. Builds run with ``--network host`` so pip reaches the index as this machine does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.control.kube.state import ImageRec, StateDB
from shipyard.engine.kube import dockerfile
from shipyard.engine.kube.render import k8s_name
from shipyard.engine.releases import build_release
from shipyard.errors import BadInput, DeployFailed, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec

Emit = Callable[[str], None]
BUILD_TIMEOUT_S = 1800.0
PUSH_TIMEOUT_S = 900.0
CALL_TIMEOUT_S = 30.0
START_HINT = ("start it (docs/kubernetes.md, \"Images\": `dockerd &` as root, or `systemctl start docker`), "
              "or point DOCKER_HOST at one")


@dataclass(frozen=True)
class ImageResult:
    rec: ImageRec
    pushed: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.rec.to_json(), "pushed": self.pushed}


class Docker:
    """The Docker engine through its CLI (``docker``), with ``env`` (``DOCKER_HOST``…) as given."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        exe = shutil.which("docker", path=self.env.get("PATH"))
        if exe is None:
            raise ShipyardError("the docker CLI is not installed: run `make setup` (Debian package docker.io)")
        self.exe = exe

    def check(self) -> str:
        """The engine's version; a clear error when it is not running."""
        proc = self._call(["version", "--format", "{{.Server.Version}}"], CALL_TIMEOUT_S)
        if proc.returncode != 0:
            where = self.env.get("DOCKER_HOST") or "the default socket /var/run/docker.sock"
            raise ShipyardError(f"the Docker engine at {where} does not answer ({_last(proc.stdout)}): {START_HINT}")
        return proc.stdout.strip()

    def build(self, context: Path, tag: str, text: str | None, emit: Emit) -> None:
        """``text``: the Dockerfile (fed on stdin), else the context's own Dockerfile."""
        argv = ["build", "--network", "host", "--tag", tag, "--file", "-" if text is not None else
                str(context / "Dockerfile"), str(context)]
        self._stream(argv, text, BUILD_TIMEOUT_S, emit, f"docker build of {tag}")

    def push(self, tag: str, emit: Emit) -> None:
        self._stream(["push", tag], None, PUSH_TIMEOUT_S, emit, f"docker push of {tag}")

    def repo_digests(self, tag: str) -> list[str]:
        proc = self._call(["image", "inspect", "--format", "{{json .RepoDigests}}", tag], CALL_TIMEOUT_S)
        if proc.returncode != 0:
            raise DeployFailed(f"docker image inspect {tag} failed: {_last(proc.stdout)}")
        return list(json.loads(proc.stdout.strip() or "[]") or [])

    def _call(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([self.exe, *args], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ShipyardError(f"docker {args[0]} did not answer within {timeout:.0f}s: {START_HINT}") from exc

    def _stream(self, args: Sequence[str], stdin: str | None, timeout: float, emit: Emit, what: str) -> None:
        """Run, passing each output line on; the last lines name what went wrong when it fails."""
        proc = subprocess.Popen([self.exe, *args], env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        killer = threading.Timer(timeout, proc.kill)
        killer.daemon = True
        killer.start()
        tail: list[str] = []
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(stdin or "")
            proc.stdin.close()
            for line in proc.stdout:
                line = line.rstrip("\n")
                emit(line)
                tail = [*tail[-19:], line]
            rc = proc.wait()
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0:
            said = "; ".join(x.strip() for x in tail[-3:] if x.strip())
            if rc < 0:
                said = f"killed after {timeout:.0f}s" + (f" ({said})" if said else "")
            raise DeployFailed(f"{what} failed: {said or f'exit {rc}'}")


def build_image(spec: Spec, env: str, *, project_dir: Path, state_dir: Path, ref: str, push: bool,
                docker: Docker, clock: Clock, emit: Emit) -> ImageResult:
    """Build (and push) the image of a new release of ``ref`` for environment ``env``; record it in the
    project's state database."""
    envspec = spec.env(env)
    app = spec.app
    repo = dockerfile.repository(envspec.kube.image, k8s_name(app.name, 63))
    docker.check()
    started = clock.monotonic()
    built = build_release(project_dir=project_dir, state_dir=state_dir, ref=ref, build_cmds=[], shared=[],
                          clock=clock, on_output=emit)
    try:
        own = (built.path / "Dockerfile").is_file()
        text = None
        if not own:
            if not app.run:
                raise BadInput("app.run: a generated Dockerfile needs the command that starts the app "
                               "(or add a Dockerfile to the repository)")
            text = dockerfile.generated(base_image=envspec.kube.base_image, run=app.run, port=envspec.port,
                                        build=app.build, requirements=(built.path / "requirements.txt").is_file(),
                                        release=built.id, commit=built.commit.sha)
        tag = f"{repo}:{built.id}"
        emit(f"building {tag} from {'the repository' if own else 'a generated'} Dockerfile"
             + ("" if own else f" (FROM {envspec.kube.base_image})"))
        docker.build(built.path, tag, text, emit)
    finally:
        shutil.rmtree(built.path, ignore_errors=True)  # the image holds the tree now
    build_s = round(clock.monotonic() - started, 3)
    digest, push_s = None, None
    if push:
        t0 = clock.monotonic()
        docker.push(tag, emit)
        push_s = round(clock.monotonic() - t0, 3)
        digest = dockerfile.digest_for(docker.repo_digests(tag), repo)
        if digest is None:
            raise DeployFailed(f"the push of {tag} reported no digest for {repo}")
    rec = ImageRec(release=built.id, image=tag, digest=digest, commit=built.commit.sha,
                   dockerfile="repository" if own else "generated", built_at=clock.time(),
                   build_duration_s=build_s, push_duration_s=push_s)
    with StateDB(state_dir) as db:
        db.put_image(rec)
    return ImageResult(rec, push)


def _last(out: str) -> str:
    lines = [x.strip() for x in out.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "no output"
