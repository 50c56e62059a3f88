"""A real Docker engine and a real registry for the image tests.

The engine: ``$SHIPYARD_TEST_DOCKER_HOST`` when set (an engine of your own), else a ``dockerd`` (Debian's
docker.io) started here with its own data root, exec root, socket and bridge under a temp dir, so it
shares nothing with a system engine or another test run; it stops with the session. The base image is the
root file system scripts/build-base-image.sh made once per machine, ``docker import``-ed (no image can be
pulled here). The registry is Debian's ``docker-registry`` on a free loopback port (the engine pushes to
127.0.0.0/8 over plain HTTP without configuration).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

BASE_TAR = Path(os.environ.get("SHIPYARD_BASE_IMAGE_TAR",
                               Path.home() / ".cache/shipyard/docker/python3-bookworm.tar"))
BASE_IMAGE = "shipyard-test-base/python3:bookworm"
START_TIMEOUT = 60.0


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing() -> list[str]:
    if os.environ.get("SHIPYARD_TEST_DOCKER_HOST"):
        tools = ["docker", "docker-registry"]
    else:
        tools = ["docker", "dockerd", "containerd", "runc", "docker-registry", "ip"]
    out = [t for t in tools if shutil.which(t) is None]
    if not os.environ.get("SHIPYARD_TEST_DOCKER_HOST") and os.geteuid() != 0:
        out.append("root (to start dockerd; or set SHIPYARD_TEST_DOCKER_HOST to a running engine)")
    if not BASE_TAR.is_file():
        out.append(f"{BASE_TAR} (scripts/build-base-image.sh)")
    return out


class DockerEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.bridge: str | None = None
        given = os.environ.get("SHIPYARD_TEST_DOCKER_HOST")
        self.host = given or f"unix://{root / 'docker.sock'}"
        self.env = {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def start(self) -> None:
        if self.proc is None and not os.environ.get("SHIPYARD_TEST_DOCKER_HOST"):
            self._start_daemon()
        t0 = time.monotonic()
        self.docker("import", "-c", 'CMD ["python3"]', str(BASE_TAR), BASE_IMAGE)
        self.import_s = time.monotonic() - t0

    def _start_daemon(self) -> None:
        # Its own bridge (a name and a /24 of its own): `docker run -p` needs one, and docker0 may be another
        # engine's. No iptables rules: published ports go through docker-proxy on 127.0.0.1.
        n = os.getpid() % 200 + 20
        self.bridge = f"syd{os.getpid() % 100000}"
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)  # left by a killed run
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "addr", "add", f"10.231.{n}.1/24", "dev", self.bridge], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True, capture_output=True)
        log = (self.root / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "dockerd.pid"), "--host", self.host,
             "--containerd-namespace", f"shipyard-test-{os.getpid()}", "--bridge", self.bridge,
             "--iptables=false", "--ip-masq=false", "--userland-proxy=true"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dockerd exited {self.proc.returncode}: {self.log_tail()}")
            if self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"dockerd did not answer within {START_TIMEOUT:.0f}s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.bridge:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
            self.bridge = None
        # dockerd leaves its default network namespace (exec/netns/default) mounted: unmount whatever is left
        # under our root, deepest first, so the temp dir can be removed.
        for point in sorted(_mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


class Registry:
    """Debian's docker-registry (distribution 2.8), filesystem storage, on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.root / "registry.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
                          f"{self.root / 'data'}\nhttp:\n  addr: {self.address}\n")
        log = (self.root / "registry.log").open("wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("docker-registry did not answer")

    def manifest_digest(self, repo: str, tag: str) -> str:
        """The digest the registry itself gives for ``repo:tag`` (Docker-Content-Digest)."""
        req = urllib.request.Request(f"http://{self.address}/v2/{repo}/manifests/{tag}", method="HEAD", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return str(resp.headers["Docker-Content-Digest"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
