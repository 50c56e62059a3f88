"""A real, small Kubernetes control plane for the kube tests: etcd, kube-apiserver (TLS, client-cert admin,
RBAC), kube-controller-manager, kube-scheduler and kwok (a fake node whose pods become Ready), all on free
loopback ports, built by scripts/setup-k8s.sh into ~/.cache/shipyard/k8s/<version>/bin; for the canary tests
also Argo Rollouts' controller and its CRDs (``start_argo``).

kwok also plays the node's kubelet server (``_kwok_flags``): the API server reaches it at the node's
InternalIP and daemon port over TLS it verifies, so ``pods/log`` is served for real, from the files that
kwok's ``Logs``/``ClusterLogs`` objects name (``serve_logs``). Job pods complete through kwok's default
``pod-complete`` stage; pods labelled ``MANUAL_KUBELET`` are left alone, for a test to play their kubelet."""

from __future__ import annotations

import ctypes
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

K8S_VERSION = "v1.34.4"
BIN = Path(os.environ.get("SHIPYARD_K8S_CACHE", Path.home() / ".cache/shipyard/k8s")) / K8S_VERSION / "bin"
NEEDED = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
START_TIMEOUT = 60.0
ARGO_CRDS = BIN.parent / "crds" / "rollouts"
# A pod with this label is not touched by kwok: the test writes its status as a kubelet would.
MANUAL_KUBELET = ("shipyard-test/kubelet", "manual")


def missing_binaries() -> list[str]:
    out = [name for name in NEEDED if not (BIN / name).is_file()]
    if shutil.which("etcd") is None:
        out.append("etcd")
    return out


def missing_argo() -> list[str]:
    out = [] if (BIN / "rollouts-controller").is_file() else [str(BIN / "rollouts-controller")]
    return out + ([] if any(ARGO_CRDS.glob("*-crd.yaml")) else [f"{ARGO_CRDS}/*-crd.yaml"])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a test run killed outright (a timeout's SIGKILL) takes its cluster with it.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey,
          *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                         x509.DNSName("localhost")]), critical=False)
    return b.sign(signer, hashes.SHA256())


def cri_line(text: str, when: datetime.datetime | None = None) -> str:
    """One log line as a container runtime writes it (what kubelet's, and kwok's, log reader parses)."""
    t = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{t} stdout F {text}\n"


def interruptible() -> None:
    """A child's SIGINT as a terminal's Ctrl-C sends it (``preexec_fn``): a test run started in the
    background (``&``) hands its children SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class KubeCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pki = root / "pki"
        self.logs = root / "logs"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"

    # --- credentials ------------------------------------------------------------------------------------
    def _pki(self) -> None:
        self.pki.mkdir(parents=True, mode=0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert(_name("shipyard-test-ca"), ca_key, _name("shipyard-test-ca"), ca_key, ca=True)
        (self.pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        _write_key(self.pki / "ca.key", ca_key)  # signs kwok's serving certificate (_kwok_pki)
        for name, subject, server in (("apiserver", _name("kube-apiserver"), True),
                                      ("admin", _name("admin", "system:masters"), False),
                                      ("developer", _name("developer", "shipyard-test"), False)):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _cert(subject, key, ca.subject, ca_key, server=server)
            (self.pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            _write_key(self.pki / f"{name}.key", key)
        _write_key(self.pki / "sa.key", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        sa = serialization.load_pem_private_key((self.pki / "sa.key").read_bytes(), None)
        (self.pki / "sa.pub").write_bytes(sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def kubeconfig(self, user: str = "admin", path: Path | None = None, context: str = "test") -> Path:
        path = path or self.root / f"kubeconfig-{user}"
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                         "certificate-authority": str(self.pki / "ca.crt")}}],
               "users": [{"name": user, "user": {"client-certificate": str(self.pki / f"{user}.crt"),
                                                 "client-key": str(self.pki / f"{user}.key")}}],
               "contexts": [{"name": context, "context": {"cluster": "test", "user": user}}]}
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    # --- processes --------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the process's life
        env = {**os.environ, "KUBE_FEATURE_WatchListClient": "false"}  # see WatchList below
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                           env=env, preexec_fn=_die_with_parent))
        log.close()

    def _wait(self, what: str, check: object, deadline: float) -> None:
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}) while waiting for {what}; "
                                       f"logs in {self.logs}")
            try:
                if check():  # type: ignore[operator]
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready within {START_TIMEOUT:.0f}s; logs in {self.logs}")

    def _get(self, path: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        with urllib.request.urlopen(self.server + path, context=ctx, timeout=2) as r:
            return r.read()  # type: ignore[no-any-return]

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        self.logs.mkdir(parents=True)
        self._pki()
        etcd_port, peer_port = free_port(), free_port()
        self._spawn("etcd", ["etcd", "--data-dir", str(self.root / "etcd"), "--name", "test",
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-cluster", f"test=http://127.0.0.1:{peer_port}",
                             "--unsafe-no-fsync"])
        p = self.pki
        self._spawn("kube-apiserver", [
            str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--cert-dir={self.root / 'certs'}", f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}", f"--client-ca-file={p / 'ca.crt'}",
            "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
            # An address range for Service IPs only: nothing is routed; every test talks to 127.0.0.1.
            "--service-cluster-ip-range=10.96.0.0/24", "--enable-priority-and-fairness=false",
            "--profiling=false", "--endpoint-reconciler-type=none",
            # Debian's etcd 3.4 cannot report watch progress, which watch-list streams need: with the gate off
            # the API server refuses them at once and clients fall back to list + watch.
            "--feature-gates=WatchList=false", *self._kubelet_flags()])
        self._wait("kube-apiserver", lambda: self._get("/readyz") == b"ok", deadline)
        admin = self.kubeconfig("admin")
        self._spawn("kube-controller-manager", [
            str(BIN / "kube-controller-manager"), f"--kubeconfig={admin}", "--leader-elect=false",
            f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
            "--use-service-account-credentials=false", "--secure-port=0", "--controllers=*,-nodeipam,-nodelifecycle",
            "--horizontal-pod-autoscaler-sync-period=1s",
            "--concurrent-deployment-syncs=2"])
        self._spawn("kube-scheduler", [str(BIN / "kube-scheduler"), f"--kubeconfig={admin}", "--leader-elect=false",
                                       "--secure-port=0"])
        self._kwok_crds(deadline)
        self._spawn("kwok", [str(BIN / "kwok"), f"--kubeconfig={admin}", "--manage-all-nodes=false",
                             "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                             "--cidr=10.244.0.0/24", "--node-ip=127.0.0.1", *self._kwok_flags()])
        self._wait("the default service account", lambda: b'"default"' in self._get(
            "/api/v1/namespaces/default/serviceaccounts/default"), deadline)

    # --- pod logs through kwok's kubelet server ----------------------------------------------------------
    def _kwok_pki(self) -> None:
        """A serving certificate for kwok's kubelet server (127.0.0.1), signed by the cluster's CA."""
        ca = x509.load_pem_x509_certificate((self.pki / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((self.pki / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name("kwok-kubelet"), key, ca.subject, ca_key, server=True)
        (self.pki / "kwok.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self.pki / "kwok.key", key)

    def _kubelet_flags(self) -> list[str]:
        """The API server's side: dial a node at its InternalIP (kwok's node-ip), verify its certificate."""
        self._kwok_pki()
        p = self.pki
        return ["--kubelet-preferred-address-types=InternalIP", f"--kubelet-certificate-authority={p / 'ca.crt'}",
                f"--kubelet-client-certificate={p / 'admin.crt'}", f"--kubelet-client-key={p / 'admin.key'}"]

    def _kwok_flags(self) -> list[str]:
        """kwok's side: its server on the port the node reports (status.daemonEndpoints), with that
        certificate; Logs and ClusterLogs read from the API server; MANUAL_KUBELET pods left alone."""
        self.kubelet_port = free_port()
        p = self.pki
        return [f"--node-port={self.kubelet_port}", f"--server-address=127.0.0.1:{self.kubelet_port}",
                f"--tls-cert-file={p / 'kwok.crt'}", f"--tls-private-key-file={p / 'kwok.key'}",
                "--enable-crds=Logs,ClusterLogs", "--disregard-status-with-label-selector=" + "=".join(MANUAL_KUBELET)]

    def _kwok_crds(self, deadline: float) -> None:
        """kwok's Logs and ClusterLogs kinds, which it watches once started (its own CRD files are not shipped
        with its binary): the fields are kwok's API (kwok.x-k8s.io/v1alpha1), kept unpruned."""
        from lightkube import Client, KubeConfig
        from lightkube.codecs import from_dict

        client = Client(KubeConfig.from_file(self.kubeconfig("admin")), field_manager="test-kwok")
        for kind, plural, scope in (("Logs", "logs", "Namespaced"), ("ClusterLogs", "clusterlogs", "Cluster")):
            client.apply(from_dict({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kwok.x-k8s.io"},
                "spec": {"group": "kwok.x-k8s.io", "scope": scope,
                         "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": plural},
                         "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                       "subresources": {"status": {}},
                                       "schema": {"openAPIV3Schema": {
                                           "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}))
        self._wait("kwok's log CRDs", lambda: b'"clusterlogs"' in self._get("/apis/kwok.x-k8s.io/v1alpha1")
                   and b'"logs"' in self._get("/apis/kwok.x-k8s.io/v1alpha1"), deadline)

    def serve_logs(self, namespace: str, lines: list[str | tuple[str, datetime.datetime]], *,
                   pod: str | None = None) -> Path:
        """Make kwok serve ``lines`` as the logs of every pod of ``namespace`` (or of ``pod`` only), each line
        stamped (now, or the time given with it) as a container runtime writes it (CRI format); returns the
        file, which a test may append to."""
        from lightkube import Client, KubeConfig
        from lightkube.generic_resource import create_global_resource, create_namespaced_resource

        path = self.root / "podlogs" / f"{namespace}-{pod or 'all'}.log"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(cri_line(x) if isinstance(x, str) else cri_line(*x) for x in lines))
        client = Client(KubeConfig.from_file(self.kubeconfig("admin")), field_manager="test-kwok")
        spec = {"logs": [{"logsFile": str(path), "follow": True}]}
        if pod is None:
            res = create_global_resource("kwok.x-k8s.io", "v1alpha1", "ClusterLogs", "clusterlogs")
            client.apply(res(metadata={"name": f"logs-{namespace}"},
                             spec={**spec, "selector": {"matchNamespaces": [namespace]}}))
        else:
            res = create_namespaced_resource("kwok.x-k8s.io", "v1alpha1", "Logs", "logs")
            client.apply(res(metadata={"name": pod, "namespace": namespace}, spec=spec))
        return path

    def stop(self) -> None:
        """Last started first (the API server before etcd), each given 3 s before SIGKILL (the data is thrown away)."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    # --- Argo Rollouts ----------------------------------------------------------------------------------
    def start_argo(self) -> None:
        """Apply Argo Rollouts' CRDs, wait until the API serves them, start its controller (not in a pod: a
        process with the admin kubeconfig, as `rollouts-controller --kubeconfig` runs out of cluster) and wait
        for its health endpoint. Its metrics and healthz servers take free ports; the controller binds them
        on 0.0.0.0: v1.8.5 has flags for their ports only (``--metricsport``, ``--healthzPort``), the address
        is controller.go's constant ``listenAddr = "0.0.0.0:%d"``; pprof (``--enable-pprof-address``) stays off."""
        import httpx2
        from lightkube import Client, KubeConfig
        from lightkube.codecs import load_all_yaml

        deadline = time.monotonic() + START_TIMEOUT
        client = Client(KubeConfig.from_file(self.kubeconfig("admin")), field_manager="test-argo",
                        timeout=httpx2.Timeout(60.0))  # a loaded machine answers slowly
        self.argo_crds = []
        for path in sorted(ARGO_CRDS.glob("*-crd.yaml")):
            for crd in load_all_yaml(path.read_text()):
                client.apply(crd, force=True)
                self.argo_crds.append(crd.metadata.name)
        self._wait("Argo Rollouts' CRDs", lambda: all(
            f'"{name.split(".")[0]}"' in self._get("/apis/argoproj.io/v1alpha1").decode() for name in self.argo_crds),
            deadline)
        self.argo_health = free_port()
        self._spawn("rollouts-controller", [
            str(BIN / "rollouts-controller"), f"--kubeconfig={self.kubeconfig('admin')}", "--leader-elect=false",
            f"--metricsport={free_port()}", f"--healthzPort={self.argo_health}", "--loglevel=info",
            "--rollout-threads=2", "--analysis-threads=2"])
        self.argo_proc = self.procs[-1]
        self._wait("rollouts-controller", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{self.argo_health}/healthz", timeout=2).status == 200, deadline)

    def stop_argo(self) -> None:
        """The controller stopped and the CRDs deleted (with every Rollout), so later tests see no Argo."""
        import httpx2
        from lightkube import Client, KubeConfig
        from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

        proc = getattr(self, "argo_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        client = Client(KubeConfig.from_file(self.kubeconfig("admin")), field_manager="test-argo",
                        timeout=httpx2.Timeout(60.0))  # a loaded machine answers slowly
        for name in getattr(self, "argo_crds", []):
            client.delete(CustomResourceDefinition, name)
