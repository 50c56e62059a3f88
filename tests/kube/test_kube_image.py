"""`shipyard image build` with a real Docker engine and a real registry (tests/kube/docker_harness.py); the
digest it records is what a kube deploy against the real test API server references."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_harness import BASE_IMAGE, DockerEngine, Registry, free_port, missing
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from sandbox import make_project, wait_for

from conftest import KubeProject

SECRET = "img-s3cr3t-Value-41c7"

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
build = ["python3 -m compileall -q ."]

[app.health]
path = "/health"

[environments.kube]
port = 8000
target = "kubernetes"

[environments.kube.kubernetes]
kubeconfig = "{kubeconfig}"
image = "{registry}/svc"
base_image = "{base}"
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    gone = missing()
    if gone:
        pytest.fail(f"the image tests need {', '.join(gone)}: run `make setup`", pytrace=False)
    eng = DockerEngine(tmp_path_factory.mktemp("docker"))
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, engine: DockerEngine) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


def build(p: Any, engine: DockerEngine, *args: str, code: int = 0) -> dict[str, Any]:
    p.env["DOCKER_HOST"] = engine.host
    doc = p.json("image", "build", *args, code=code, timeout=300)
    assert isinstance(doc, dict)
    return doc


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return None


def test_generated_image_builds_runs_and_push_records_the_registry_digest(
        tmp_path: Path, engine: DockerEngine, registry: Registry) -> None:
    p = make_project(tmp_path)
    (p.dir / "shipyard.toml").write_text(SPEC.format(kubeconfig=tmp_path / "none", registry=registry.address,
                                                     base=BASE_IMAGE))
    sha = p.commit("v1", files={"requirements.txt": "six==1.16.0\n"})

    doc = build(p, engine, "--env", "kube")
    rel = doc["release"]
    assert rel.endswith(sha[:7]) and doc["dockerfile"] == "generated" and doc["pushed"] is True
    assert doc["image"] == f"{registry.address}/svc:{rel}"
    # The digest recorded is the one the registry itself serves for the tag.
    assert doc["digest"] == registry.manifest_digest("svc", rel)
    assert doc["pinned"] == f"{registry.address}/svc@{doc['digest']}"
    assert doc["build_duration_s"] > 0 and doc["push_duration_s"] > 0

    # The requirement was installed in the image's virtualenv; app.build ran inside the image.
    out = engine.docker("run", "--rm", doc["image"], "python3", "-c",
                        "import six, pathlib; print(six.__version__, any(pathlib.Path('/app').rglob('*.pyc')))")
    assert out.stdout.split() == ["1.16.0", "True"]
    labels = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}", doc["image"]).stdout)
    assert labels == {"org.opencontainers.image.revision": sha, "dev.shipyard.release": rel}

    # `docker run -p` of the image answers its health path (the app listens on all interfaces, as a pod must).
    port = free_port()
    cid = engine.docker("run", "-d", "-p", f"127.0.0.1:{port}:8000", doc["image"]).stdout.strip()
    try:
        assert wait_for(lambda: health(port) == 200, timeout=30), engine.docker("logs", cid, check=False).stdout
        user = engine.docker("exec", cid, "id", "-u").stdout.strip()
        assert user == "65534"  # not root
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_repository_dockerfile_is_used_and_a_failed_build_says_why(
        tmp_path: Path, engine: DockerEngine, registry: Registry) -> None:
    p = make_project(tmp_path)
    (p.dir / "shipyard.toml").write_text(SPEC.format(kubeconfig=tmp_path / "none", registry=registry.address,
                                                     base=BASE_IMAGE))
    p.commit("v1", files={"Dockerfile": f"FROM {BASE_IMAGE}\nCOPY app.py /srv/app.py\nLABEL own=yes\n"
                                        'CMD ["python3", "/srv/app.py"]\n'})
    doc = build(p, engine, "--no-push")
    assert doc["dockerfile"] == "repository" and doc["digest"] is None and doc["pushed"] is False
    labels = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}", doc["image"]).stdout)
    assert labels == {"own": "yes"}

    p.commit("v2", files={"Dockerfile": f"FROM {BASE_IMAGE}\nRUN exit 7\n"})
    proc = p.cli("image", "build")
    assert proc.returncode == 1 and "docker build of" in proc.stderr and "non-zero code: 7" in proc.stderr, proc.stderr

    # Not a kubernetes environment / no engine: clear messages, exit 2 / 1, no traceback.
    p.env["DOCKER_HOST"] = f"unix://{tmp_path / 'nothing.sock'}"
    proc = p.cli("image", "build")
    assert proc.returncode == 1 and "does not answer" in proc.stderr and "Traceback" not in proc.stderr
    proc = p.cli("image", "build", "--env", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr
    spec = (p.dir / "shipyard.toml").read_text()
    second = spec[spec.index("[environments.kube]"):].replace("environments.kube", "environments.kube2")
    (p.dir / "shipyard.toml").write_text(spec + '[environments.local]\nport = 8300\n' + second.replace("8000", "8001"))
    proc = p.cli("image", "build")
    assert proc.returncode == 2 and "give --env: the kubernetes environments are kube, kube2" in proc.stderr
    proc = p.cli("image", "build", "--env", "local")
    assert proc.returncode == 2 and "not a kubernetes environment" in proc.stderr


def test_deploy_of_the_built_release_references_its_digest_and_is_recorded(
        kproject: KubeProject, admin: Client, engine: DockerEngine, registry: Registry) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(autoscale=False, extra=f'image = "{registry.address}/svc"\nbase_image = "{BASE_IMAGE}"\n')
    p.commit("v2")
    img = build(p, engine)
    p.ok("secrets", "set", "--env", "kube", f"API_TOKEN={SECRET}")

    first = p.json("deploy", "--env", "kube", "--release", img["release"])
    assert first["outcome"] == "succeeded" and first["release"] == img["release"], first
    dep = admin.get(Deployment, "svc-kube", namespace=ns)
    assert dep.spec.template.spec.containers[0].image == img["pinned"]
    assert "@sha256:" in img["pinned"]

    # --ref of a commit with a built image deploys that image again (no new release id).
    second = p.json("deploy", "--env", "kube")
    assert second["release"] == img["release"] and second["outcome"] == "succeeded"

    # --from: the release the state database records as serving there, with its image.
    third = p.json("deploy", "--env", "kube", "--from", "kube")
    assert third["release"] == img["release"] and third["outcome"] == "succeeded"
    proc = p.cli("deploy", "--env", "kube", "--from", "nowhere")
    assert proc.returncode == 2 and "nowhere" in proc.stderr

    rows = p.json("history", "--env", "kube")
    assert isinstance(rows, list)
    assert [r["deployment"] for r in rows] == [third["deployment"], second["deployment"], first["deployment"]]
    top = rows[2]
    assert top["kind"] == "deploy" and top["outcome"] == "succeeded" and top["release"] == img["release"]
    assert top["performer"].startswith("local (") and top["duration_s"] > 0
    assert [s["name"] for s in top["steps"]] == ["apply", "wait_rollout", "record", "prune"]
    assert all(s["status"] == "succeeded" and s["duration_s"] is not None for s in top["steps"])

    st = p.json("status", "--env", "kube")
    assert isinstance(st, dict)
    assert st["release"] == img["release"] and st["recorded_release"] == img["release"]
    assert (st["replicas"], st["ready"]) == (2, 2) and st["deployments"][0]["image"] == img["pinned"]
    assert st["last_deployment"]["id"] == third["deployment"]
    assert len(st["pods"]) == 2 and all(pod["ready"] for pod in st["pods"])

    human = p.ok("status", "--env", "kube").stdout
    assert f"release {img['release']}  2/2 ready" in human and "deployment svc-kube (serving)" in human, human
    human = p.ok("history", "--env", "kube").stdout
    assert len([line for line in human.splitlines() if f"deploy  {img['release']}" in line
                and "succeeded" in line]) == 3, human

    # Status reads the cluster, not the database: a Deployment deleted behind shipyard's back shows as gone.
    admin.delete(Deployment, "svc-kube", namespace=ns)
    assert wait_for(lambda: p.json("status", "--env", "kube")["deployments"] == [], timeout=20)  # type: ignore[index]
    st = p.json("status", "--env", "kube")
    assert isinstance(st, dict) and (st["replicas"], st["ready"]) == (0, 0)
    assert st["recorded_release"] == img["release"]

    # What the state database holds never includes a secret's value.
    for db in (p.dir / ".shipyard").glob("state.db*"):
        assert SECRET.encode() not in db.read_bytes(), db

    # An invalid release id is refused before anything is applied.
    proc = p.cli("deploy", "--env", "kube", "--release", "../x")
    assert proc.returncode == 2 and "--release" in proc.stderr
