"""One real Kubernetes control plane for the kube tests (tests/kube/harness.py), a fake kwok node, and a
throwaway git project per test whose environment ``kube`` targets its own namespace.

The binaries come from scripts/setup-k8s.sh (run by `make setup`); without them these tests fail saying so.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Namespace, Node
from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BIN, KubeCluster, missing_binaries  # noqa: E402
from sandbox import Project, make_project  # noqa: E402

KUBE_SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
release = {release}

[app.health]
path = "/health"
interval = "2s"
start_period = "10s"

[app.ready]
path = "/ready"

[app.stop]
grace = "20s"

[environments.kube]
port = 8000
replicas = 2
target = "kubernetes"
strategy = "{strategy}"
deploy_timeout = "{deploy_timeout}"
max_surge = 1
max_unavailable = 0

[environments.kube.env]
GREETING = "{greeting}"

[environments.kube.kubernetes]
kubeconfig = "{kubeconfig}"
namespace = "{namespace}"
drain_delay = 3
{kube_extra}
"""

FULL = """\
resources = {{ requests = {{ cpu = "{cpu}", memory = "64Mi" }}, limits = {{ memory = "128Mi" }} }}
network_policy = {{ from_namespaces = ["ingress"] }}
disruption = {{ max_unavailable = 1 }}
"""


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    missing = missing_binaries()
    if missing:
        pytest.fail(f"the Kubernetes test toolchain is missing ({', '.join(missing)} not in {BIN} or PATH): "
                    "run `make setup` (scripts/setup-k8s.sh builds it)", pytrace=False)
    cluster = KubeCluster(tmp_path_factory.mktemp("kube"))
    try:
        cluster.start()
        client = admin_client(cluster)
        client.create(Node.from_dict({
            "metadata": {"name": "kwok-node-0", "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": "kwok-node-0"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}))
        # Admission taints a new node not-ready; the node lifecycle controller (off: kwok's heartbeats are
        # slower than its grace period) would lift it once kwok reports Ready. Lift it here instead.
        client.patch(Node, "kwok-node-0", {"spec": {"taints": []}}, patch_type=PatchType.MERGE)
        yield cluster
    finally:
        cluster.stop()


def admin_client(cluster: KubeCluster) -> Client:
    return Client(KubeConfig.from_file(cluster.kubeconfig("admin")), field_manager="test-admin")


@pytest.fixture
def admin(kube: KubeCluster) -> Client:
    return admin_client(kube)


_ns = itertools.count(1)


class KubeProject(Project):
    """A sandbox project with one environment, ``kube``, on the test cluster."""

    namespace: str
    kubeconfig: Path

    def write_kube_spec(self, *, greeting: str = "hello", deploy_timeout: str = "60s", release: str = "[]",
                        cpu: str = "100m", autoscale: bool = True, extra: str = "", strategy: str = "rolling"
                        ) -> None:
        kube_extra = FULL.format(cpu=cpu) + (
            "autoscale = { min = 2, max = 4, cpu_percent = 70 }\n" if autoscale else "") + extra
        (self.dir / "shipyard.toml").write_text(KUBE_SPEC.format(
            release=release, deploy_timeout=deploy_timeout, strategy=strategy, greeting=greeting, kubeconfig=self.kubeconfig,
            namespace=self.namespace, kube_extra=kube_extra))


@pytest.fixture
def kproject(tmp_path: Path, kube: KubeCluster, admin: Client) -> KubeProject:
    base = make_project(tmp_path)
    proj = KubeProject(base.dir, base.port)
    proj.namespace = f"t{next(_ns)}"
    proj.kubeconfig = kube.kubeconfig("admin", tmp_path / "kubeconfig")
    admin.create(Namespace.from_dict({"metadata": {"name": proj.namespace}}))
    proj.write_kube_spec()
    proj.commit("v1")
    return proj


def audit_rows(p: KubeProject, env: str = "kube") -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """The project's audit log for ``env``, oldest first: (performer, action, target, detail). Read from the
    SQLite state database the CLI wrote (the sandbox runs it without SHIPYARD_DATABASE_URL)."""
    from shipyard.control.kube.state import StateDB

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SHIPYARD_DATABASE_URL", raising=False)
        with StateDB(p.dir / ".shipyard") as db:
            return [(a.performer, a.action, a.target, a.detail or {}) for a in db.store.list_audit(env=env)]
