"""`shipyard logs` on an environment with target = "kubernetes": the serving release's pods' logs through the
real API server's pods/log, which kwok's kubelet server answers from the files its Logs objects name
(tests/kube/harness.py, serve_logs) — prefixed by pod, interleaved by the kubelet's stamps, filtered, followed."""

from __future__ import annotations

import datetime
import json
import queue
import signal
import subprocess
import sys
import threading

from harness import KubeCluster, cri_line, interruptible
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from conftest import KubeProject


def test_logs_of_the_serving_pods_prefixed_interleaved_filtered_and_followed(
        kproject: KubeProject, kube: KubeCluster, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    p.write_kube_spec(autoscale=False)
    p.commit("v2")
    doc = p.json("deploy", "--env", "kube")
    assert isinstance(doc, dict) and doc["outcome"] == "succeeded", doc
    a, b = sorted(pod.metadata.name for pod in admin.list(Pod, namespace=ns, labels={
        "shipyard.dev/release": doc["release"], "app.kubernetes.io/component": "web"}))
    t = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=60)
    at = [t + datetime.timedelta(seconds=s) for s in (0, 10, 20, 30)]
    file_a = kube.serve_logs(ns, [("a1 GET / 200", at[0]), ("a2 error: boom", at[2])], pod=a)
    kube.serve_logs(ns, [("b1 GET /health 200", at[1]), ("b2 GET /ready 200", at[3])], pod=b)

    every = p.ok("logs", "--env", "kube").stdout.splitlines()
    assert every == [f"[{a}] a1 GET / 200", f"[{b}] b1 GET /health 200", f"[{a}] a2 error: boom",
                     f"[{b}] b2 GET /ready 200"]
    assert p.ok("logs", "--env", "kube", "--lines", "2").stdout.splitlines() == every[2:]
    assert p.ok("logs", "--env", "kube", "--grep", "re:^a\\d").stdout.splitlines() == [every[0], every[2]]
    since = (at[2] - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert p.ok("logs", "--env", "kube", "--since", since).stdout.splitlines() == every[2:]
    docs = [json.loads(x) for x in p.ok("logs", "--env", "kube", "--json", "--lines", "1").stdout.splitlines()]
    assert docs == [{"instance": b, "pod": b, "line": "b2 GET /ready 200", "time": at[3].timestamp()}]
    for bad in (("--process", "worker"), ("--router",)):
        proc = p.cli("logs", "--env", "kube", *bad)
        assert proc.returncode == 2 and bad[0] in proc.stderr and "Traceback" not in proc.stderr, proc.stderr

    follow = subprocess.Popen([sys.executable, "-m", "shipyard", "logs", "--env", "kube", "-f", "--lines", "1"],
                              cwd=p.dir, env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=interruptible)
    seen: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [seen.put(x.rstrip("\n")) for x in follow.stdout or []], daemon=True)
    reader.start()
    try:
        assert seen.get(timeout=30) == every[3]
        with file_a.open("a") as f:  # the container writes a line: the followed stream carries it
            f.write(cri_line("a3 POST /orders 201"))
        assert seen.get(timeout=30) == f"[{a}] a3 POST /orders 201"
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
    finally:
        follow.kill()
    assert "Traceback" not in (follow.stderr.read() if follow.stderr else "")
