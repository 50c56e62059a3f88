"""Canaries on Kubernetes, end to end: `shipyard deploy` on a `strategy = "canary"` environment against the
real API server + kwok (tests/kube/harness.py), Argo Rollouts' real controller and CRDs, and a real
Prometheus that its AnalysisRuns query.

kwok's pods run no process, so nothing in them serves the request metrics the analysis reads. A small
exporter in the test stands in for the pods' metrics endpoint: it serves `http_requests_total` and the
latency histogram for the canary and stable release that the Rollout's analysis arguments name (read from
the API server at each scrape), healthy or — for one test — with the canary answering half its requests
5xx. Prometheus scrapes it every second; everything after that (the PromQL, Argo's measurements and
verdicts, the abort) is the real thing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from harness import KubeCluster, free_port, missing_argo
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap

from conftest import KubeProject, admin_client, audit_rows

Rollout = create_namespaced_resource("argoproj.io", "v1alpha1", "Rollout", "rollouts")
AnalysisTemplate = create_namespaced_resource("argoproj.io", "v1alpha1", "AnalysisTemplate", "analysistemplates")
AnalysisRun = create_namespaced_resource("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns")
NAME = "svc-kube"
RPS = 40.0

CANARY = """
[environments.kube.canary]
steps = [{{ weight = 50 }}, {{ pause = "1s" }}, {{ pause = {{}} }}, {{ weight = 100 }}]
step_duration = "4s"
min_samples = 10

[environments.kube.rollback]
error_rate = {{ above = "10%", for = "3s" }}
"""


# --- a real Prometheus scraping the stand-in for the pods' metrics ------------------------------------------
class Exporter:
    """Counters that grow at RPS per release from when a release is first named by a Rollout's analysis."""

    def __init__(self, admin: Client) -> None:
        self.admin = admin
        self.bad: set[str] = set()
        self.namespaces: set[str] = set()
        self.born: dict[str, float] = {}
        self.lock = threading.Lock()

    def releases(self, ns: str) -> tuple[str, str] | None:
        try:
            ro = self.admin.get(Rollout, NAME, namespace=ns)
        except Exception:
            return None
        args = {a["name"]: a["value"] for a in ro["spec"]["strategy"]["canary"]["analysis"]["args"]}
        return args["canary"], args["stable"]

    def text(self) -> str:
        lines = []
        now = time.monotonic()
        for ns in sorted(self.namespaces):
            pair = self.releases(ns)
            if pair is None:
                continue
            for rel in set(pair):
                with self.lock:
                    age = now - self.born.setdefault(rel, now)
                n = RPS * age
                errors = n / 2 if ns in self.bad and rel == pair[0] and pair[0] != pair[1] else 0.0
                labels = f'env="kube",release="{rel}",namespace="{ns}"'
                lines += [f'http_requests_total{{{labels},code="2xx"}} {n - errors}',
                          f'http_requests_total{{{labels},code="5xx"}} {errors}',
                          f'http_request_duration_seconds_bucket{{{labels},le="0.025"}} {n}',
                          f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {n}']
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prom(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Exporter]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run `make setup` (scripts/setup-system.sh installs it)", pytrace=False)
    exporter = Exporter(admin_client(kube))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = exporter.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    d = tmp_path_factory.mktemp("prom")
    port = free_port()
    (d / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "pods", "static_configs": [
            {"targets": [f"127.0.0.1:{server.server_address[1]}"]}]}]}))
    log = (d / "log").open("w")
    proc = subprocess.Popen([binary, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("prometheus ready", lambda: _ready(url), timeout=30)
        yield url, exporter
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        server.shutdown()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def argo(kube: KubeCluster) -> Iterator[KubeCluster]:
    missing = missing_argo()
    if missing:
        pytest.fail(f"Argo Rollouts is missing ({', '.join(missing)}): run scripts/setup-k8s.sh (`make setup`)",
                    pytrace=False)
    kube.start_argo()
    try:
        yield kube
    finally:
        kube.stop_argo()


# --- helpers --------------------------------------------------------------------------------------------------
def canary_spec(p: KubeProject, prom_url: str, greeting: str) -> None:
    p.write_kube_spec(strategy="canary", autoscale=False, greeting=greeting,
                      extra=f'prometheus = "{prom_url}"\n' + CANARY.format())


def rollout(admin: Client, ns: str) -> dict[str, Any]:
    return admin.get(Rollout, NAME, namespace=ns).to_dict()  # type: ignore[no-any-return]


def wait_for(what: str, pred: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def at_gate(admin: Client, ns: str) -> dict[str, Any] | None:
    st = rollout(admin, ns).get("status", {})
    conds = [c["reason"] for c in st.get("pauseConditions") or []]
    return st if st.get("currentStepIndex") == 2 and conds == ["CanaryPauseStep"] else None


def background(p: KubeProject) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "kube", "--json"], cwd=p.dir,
                            env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, json.loads(out), err


def ready_by_hash(admin: Client, ns: str) -> dict[str, int]:
    out = {}
    for rs in admin.list(ReplicaSet, namespace=ns):
        h = (rs.metadata.labels or {}).get("rollouts-pod-template-hash")
        if h:
            out[h] = rs.status.readyReplicas or 0
    return out


def first_release(p: KubeProject, admin: Client, prom_url: str) -> dict[str, Any]:
    canary_spec(p, prom_url, "v1")
    p.commit("v1 canary")
    doc = p.json("deploy", "--env", "kube", timeout=120)
    assert isinstance(doc, dict) and doc["outcome"] == "succeeded", doc
    return doc


# --- tests (the first runs before Argo is installed in this module) ----------------------------------------
def test_canary_without_argo_crds_is_refused_naming_what_to_install(kproject: KubeProject, admin: Client) -> None:
    canary_spec(kproject, "http://127.0.0.1:9", "v1")
    kproject.commit("canary")
    r = kproject.cli("deploy", "--env", "kube")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "rollouts.argoproj.io CRD" in r.stderr and "install Argo Rollouts" in r.stderr
    assert "Traceback" not in r.stderr
    r = kproject.cli("rollback", "--env", "kube")
    assert r.returncode == 3 and "install Argo Rollouts" in r.stderr, r.stderr
    assert not [c for c in admin.list(ConfigMap, namespace=kproject.namespace)
                if c.metadata.name.startswith(NAME)]  # nothing applied


def test_export_of_a_canary_env_is_the_rollout_and_its_templates(kproject: KubeProject) -> None:
    canary_spec(kproject, "http://127.0.0.1:9", "v1")
    kproject.commit("canary")
    doc = kproject.json("export", "kubernetes", "--env", "kube", "--json")
    assert isinstance(doc, dict)
    kinds = [o["kind"] for o in doc["objects"]]
    assert "Rollout" in kinds and "AnalysisTemplate" in kinds and "Deployment" not in kinds, kinds
    steps = next(o for o in doc["objects"] if o["kind"] == "Rollout")["spec"]["strategy"]["canary"]["steps"]
    assert steps == [{"setWeight": 50}, {"pause": {"duration": "1s"}}, {"pause": {}}, {"setWeight": 100}]


def test_canary_commands_on_a_rolling_kube_env_are_bad_input(kproject: KubeProject) -> None:
    for command in ("promote", "abort"):  # pause and resume take the same path (cli/canary_control.py)
        r = kproject.cli(command, "--env", "kube")
        assert r.returncode == 2 and "environments.kube.strategy is 'rolling'" in r.stderr, (command, r.stderr)


def test_canary_steps_through_with_analysis_then_promote(argo: KubeCluster, prom: tuple[str, Exporter],
                                                         kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    url, exporter = prom
    exporter.namespaces.add(ns)
    first = first_release(p, admin, url)
    ro = rollout(admin, ns)
    assert ro["status"]["phase"] == "Healthy" and ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
    stable = ro["status"]["stableRS"]
    assert admin.get(AnalysisTemplate, "svc-kube-canary", namespace=ns)
    assert not list(admin.list(Deployment, namespace=ns))  # the Rollout replaced the Deployment
    assert first["steps"][1]["argo"]["phase"] == "Healthy"

    canary_spec(p, url, "v2")
    p.commit("v2")
    proc = background(p)
    st = wait_for("the canary at its manual gate", lambda: at_gate(admin, ns))
    ready = ready_by_hash(admin, ns)
    assert ready[stable] >= 1 and ready[st["currentPodHash"]] == 1, ready  # 50 % of 2 replicas
    # The background AnalysisRun judged canary against stable from Prometheus: a successful measurement.
    def judged() -> bool:
        for run in admin.list(AnalysisRun, namespace=ns):
            results = {m["name"]: m for m in run.to_dict().get("status", {}).get("metricResults") or []}
            if results.get("judgement-errors", {}).get("successful", 0) >= 1:
                return True
        return False
    wait_for("a successful judgement measurement", judged, timeout=45)

    paused = p.json("pause", "--env", "kube")
    assert isinstance(paused, dict) and paused["patched"] == ["spec paused=True"]
    assert rollout(admin, ns)["spec"]["paused"] is True
    p.ok("resume", "--env", "kube")
    assert not rollout(admin, ns)["spec"].get("paused")
    promoted = p.json("promote", "--env", "kube")
    assert isinstance(promoted, dict) and promoted["patched"] == ["status pauseConditions=None"], promoted

    code, doc, err = finished(proc)
    assert code == 0 and doc["outcome"] == "succeeded", (doc, err)
    # Audited as the local canary commands are: canary_<command> on the release the Rollout rolls out.
    canary = [(a[1], a[2], a[3]["message"]) for a in audit_rows(p) if a[1].startswith("canary_")]
    assert canary == [("canary_pause", doc["release"], "spec paused=True"),
                      ("canary_resume", doc["release"], "spec paused=False"),
                      ("canary_promote", doc["release"], "status pauseConditions=None")], canary
    wait = next(s for s in doc["steps"] if s["kind"] == "wait_rollout")
    assert wait["argo"]["phase"] == "Healthy"
    ro = rollout(admin, ns)
    assert ro["status"]["stableRS"] == st["currentPodHash"] != stable

    # Rollback re-applies v1's objects; within rollbackWindow Argo skips the steps (no gate to promote).
    back = p.json("rollback", "--env", "kube", timeout=120)
    assert isinstance(back, dict) and back["outcome"] == "succeeded" and back["release"] == first["release"], back
    assert rollout(admin, ns)["status"]["stableRS"] == stable


def test_canary_plan_is_a_server_side_dry_run_of_the_argo_objects(argo: KubeCluster, kproject: KubeProject,
                                                                   admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(strategy="canary", autoscale=True, extra='prometheus = "http://127.0.0.1:9"\n' + """
[environments.kube.canary]
steps = [{ weight = 20 }, { analysis = "smoke" }, { pause = {} }, 100]
analysis = { smoke = { duration = "20s", p99 = { above = "500ms", for = "10s" } } }
[environments.kube.rollback]
error_rate = { above = "5%", for = "1m" }
cpu = { above = "90%" }
""")
    p.commit("plan")
    r = p.cli("deploy", "--env", "kube", "--plan", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    actions = {o["object"]: o["action"] for o in doc["objects"]}
    for obj in ("Rollout.argoproj.io/svc-kube", "AnalysisTemplate.argoproj.io/svc-kube-canary",
                "AnalysisTemplate.argoproj.io/svc-kube-analysis-smoke", "HorizontalPodAutoscaler.autoscaling/svc-kube"):
        assert actions[obj] == "create", actions
    assert not any(o.startswith("Deployment") for o in actions)
    assert "rollback.cpu is not judged on kubernetes" in r.stderr
    assert not list(admin.list(Rollout, namespace=ns)) and not list(admin.list(AnalysisTemplate, namespace=ns))


def test_abort_keeps_the_stable_replicaset_serving(argo: KubeCluster, prom: tuple[str, Exporter],
                                                   kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    url, exporter = prom
    exporter.namespaces.add(ns)
    first_release(p, admin, url)
    stable = rollout(admin, ns)["status"]["stableRS"]
    canary_spec(p, url, "v2")
    p.commit("v2")
    proc = background(p)
    st = wait_for("the canary at its manual gate", lambda: at_gate(admin, ns))
    aborted = p.json("abort", "--env", "kube")
    assert isinstance(aborted, dict) and aborted["patched"] == ["status abort=True"]
    code, doc, err = finished(proc)
    assert code == 1 and doc["outcome"] == "failed", (doc, err)
    assert "aborted" in doc["reason"] and "RolloutAborted" in doc["reason"], doc["reason"]
    assert [(a[1], a[2]) for a in audit_rows(p)][-2:] == [("deploy", f"deployment {doc['deployment']}"),
                                                         ("canary_abort", doc["release"])]
    ready = ready_by_hash(admin, ns)
    assert ready[stable] >= 1, ready  # it never stopped serving
    wait_for("the stable ReplicaSet back at 2 ready, the canary's at 0", lambda: (
        r := ready_by_hash(admin, ns))[stable] == 2 and r.get(st["currentPodHash"], 0) == 0)
    assert rollout(admin, ns)["status"]["stableRS"] == stable


def test_failing_analysis_aborts_the_canary_with_argos_message(argo: KubeCluster, prom: tuple[str, Exporter],
                                                              kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    url, exporter = prom
    exporter.namespaces.add(ns)
    first_release(p, admin, url)
    stable = rollout(admin, ns)["status"]["stableRS"]
    exporter.bad.add(ns)  # the next canary answers half its requests 5xx
    canary_spec(p, url, "v2")
    p.commit("v2")
    r = p.cli("deploy", "--env", "kube", timeout=120)  # the human form: progress on stderr, outcome on stdout
    assert r.returncode == 1, r.stdout + r.stderr
    assert "applied Rollout.argoproj.io/svc-kube" in r.stderr, r.stderr
    assert re.search(r"rollout svc-kube: (Progressing|Paused) at step [0-3]/4", r.stderr), r.stderr
    assert "rollout svc-kube: Degraded: RolloutAborted" in r.stderr, r.stderr
    outcome = r.stdout.strip().splitlines()[-1]
    assert outcome.startswith("deploy of r") and ": failed — rollout svc-kube aborted: RolloutAborted" in outcome
    assert 'Metric "error-rate" assessed Failed' in outcome or 'Metric "judgement-errors" assessed Failed' in outcome
    assert "Traceback" not in r.stderr
    wait_for("the stable ReplicaSet back at 2 ready", lambda: ready_by_hash(admin, ns)[stable] == 2)
