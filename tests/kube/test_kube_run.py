"""`shipyard run` on an environment with target = "kubernetes", against the real API server, controller
manager, scheduler and kwok node of tests/kube/harness.py: the command is a Job of the serving release; its
pod completes through kwok's pod-complete stage, or — labelled MANUAL_KUBELET — with the status the test
writes as a kubelet would; its log is served by kwok's kubelet server through the API server's pods/log."""

from __future__ import annotations

import datetime
import signal
import subprocess
import sys
from typing import Any

from harness import MANUAL_KUBELET, KubeCluster, interruptible
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import PatchType
from sandbox import wait_for

from conftest import KubeProject, audit_rows

MANUAL = f'labels = {{ "{MANUAL_KUBELET[0]}" = "{MANUAL_KUBELET[1]}" }}\n'
RUN = {"app.kubernetes.io/component": "run"}


def deployed(p: KubeProject) -> dict[str, Any]:
    p.write_kube_spec(autoscale=False)
    p.commit("v2")
    doc = p.json("deploy", "--env", "kube")
    assert isinstance(doc, dict) and doc["outcome"] == "succeeded", doc
    return doc


def run_jobs(admin: Client, ns: str) -> list[Job]:
    return [j for j in admin.list(Job, namespace=ns, labels=RUN) if j.metadata.deletionTimestamp is None]


def job_pod(admin: Client, ns: str, job: str) -> Pod | None:
    pods = list(admin.list(Pod, namespace=ns, labels={"batch.kubernetes.io/job-name": job}))
    return pods[0] if pods else None


def play_kubelet(admin: Client, ns: str, pod: Pod, state: dict[str, Any], phase: str) -> None:
    """Write the pod's status as its kubelet would (kwok leaves MANUAL_KUBELET pods alone)."""
    c = pod.spec.containers[0]
    admin.patch(Pod.Status, pod.metadata.name, {"status": {"phase": phase, "containerStatuses": [
        {"name": c.name, "image": c.image, "imageID": "", "ready": phase == "Running", "restartCount": 0,
         "state": state}]}}, namespace=ns, patch_type=PatchType.MERGE)


def started(p: KubeProject, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shipyard", "run", "--env", "kube", *args], cwd=p.dir, env=p.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_run_is_a_job_of_the_serving_release_whose_log_streams_and_which_is_deleted(
        kproject: KubeProject, kube: KubeCluster, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    rel = deployed(p)["release"]
    served = ["Operations to perform:", "  Apply all migrations: shop", "Running migrations: OK"]
    kube.serve_logs(ns, served)
    proc = p.cli("run", "--env", "kube", "--", "python3", "manage.py", "migrate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == served  # the pod's log, each line once, nothing else on stdout
    assert f"running in release {rel}" in proc.stderr and "deleted" in proc.stderr
    assert run_jobs(admin, ns) == []  # deleted (Background: its pod goes with it)
    # Audited as a local run is: the command, the release it ran in, its exit code.
    performer, action, target, detail = audit_rows(p)[-1]
    assert (action, target) == ("run", rel) and performer.startswith("local (")
    assert detail["command"] == "python3 manage.py migrate" and detail["exit_code"] == 0
    assert detail["target"] == "kubernetes" and detail["job"].startswith("svc-kube-run-")

    # The checkout's config changed since the deploy: the command still gets the serving release's.
    p.write_kube_spec(autoscale=False, greeting="changed-since")
    proc = p.cli("run", "--env", "kube", "--keep", "--timeout", "90s", "--", "python3", "-c", "print('hi')")
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stderr
    [job] = run_jobs(admin, ns)
    dc = admin.get(Deployment, "svc-kube", namespace=ns).spec.template.spec.containers[0]
    c = job.spec.template.spec.containers[0]
    assert c.command == ["python3", "-c", "print('hi')"]
    assert c.image == dc.image == f"svc:{rel}" and c.envFrom == dc.envFrom and c.resources == dc.resources
    assert {e.name: e.value for e in c.env}["SHIPYARD_RELEASE"] == rel
    assert job.spec.activeDeadlineSeconds == 90 and job.spec.backoffLimit == 0
    assert job.spec.template.spec.restartPolicy == "Never" and job.spec.ttlSecondsAfterFinished is None
    assert job.metadata.labels["shipyard.dev/release"] == rel
    assert "shipyard" in {m.manager for m in job.metadata.managedFields}
    assert {c.type for c in job.status.conditions if c.status == "True"} >= {"Complete"}
    pod = job_pod(admin, ns, job.metadata.name)
    assert pod is not None and pod.status.phase == "Succeeded"  # kwok's pod-complete stage
    assert pod.status.containerStatuses[0].state.terminated.exitCode == 0


def test_a_failing_command_exits_with_its_code_and_its_job_is_deleted(kproject: KubeProject, kube: KubeCluster,
                                                                      admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    deployed(p)
    kube.serve_logs(ns, ["Traceback (most recent call last):", "ValueError: no such table"])
    p.write_kube_spec(autoscale=False, extra=MANUAL)  # the Job's pod only: the Deployment is not re-applied
    proc = started(p, "--", "python3", "manage.py", "check")
    try:
        assert wait_for(lambda: run_jobs(admin, ns) and job_pod(admin, ns, run_jobs(admin, ns)[0].metadata.name)
                        and job_pod(admin, ns, run_jobs(admin, ns)[0].metadata.name).spec.nodeName, timeout=30)
        pod = job_pod(admin, ns, run_jobs(admin, ns)[0].metadata.name)
        assert pod is not None
        play_kubelet(admin, ns, pod, {"running": {"startedAt": now()}}, "Running")
        play_kubelet(admin, ns, pod, {"terminated": {"exitCode": 3, "reason": "Error", "startedAt": now(),
                                                     "finishedAt": now()}}, "Failed")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert out.splitlines() == ["Traceback (most recent call last):", "ValueError: no such table"]
    assert "BackoffLimitExceeded" in err and "Traceback" not in err.replace("Traceback (most", "")
    assert run_jobs(admin, ns) == []
    assert [(a[1], a[3].get("exit_code")) for a in audit_rows(p)][-1] == ("run", 3)

    # A release whose Secret is gone is refused at once (its pod would wait for it until the deadline).
    secret = next(r.secretRef.name for r in pod.spec.containers[0].envFrom if r.secretRef)
    admin.delete(Secret, secret, namespace=ns)
    gone = p.cli("run", "--env", "kube", "--", "true")
    assert gone.returncode == 2 and f"Secret {secret} is gone" in gone.stderr, gone.stderr
    assert run_jobs(admin, ns) == []


def test_the_timeout_fails_the_job_and_ctrl_c_or_sigterm_deletes_it(kproject: KubeProject, admin: Client) -> None:
    p, ns = kproject, kproject.namespace
    deployed(p)
    p.write_kube_spec(autoscale=False, extra=MANUAL)  # no kubelet starts the pod: it stays Pending
    proc = p.cli("run", "--env", "kube", "--timeout", "2s", "--", "sleep", "600", timeout=90)
    assert proc.returncode == 1, proc.stderr
    assert "DeadlineExceeded" in proc.stderr and proc.stdout == "", proc.stderr
    assert run_jobs(admin, ns) == []

    proc2 = started(p, "--", "sleep", "600")
    try:
        assert wait_for(lambda: run_jobs(admin, ns) and job_pod(admin, ns, run_jobs(admin, ns)[0].metadata.name),
                        timeout=30)
        proc2.send_signal(signal.SIGINT)
        out, err = proc2.communicate(timeout=30)
    finally:
        proc2.kill()
    assert proc2.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert run_jobs(admin, ns) == []

    proc3 = started(p, "--", "sleep", "600")  # SIGTERM (a cancelled CI job) deletes it too
    try:
        assert wait_for(lambda: run_jobs(admin, ns), timeout=30)
        proc3.terminate()
        out, err = proc3.communicate(timeout=30)
    finally:
        proc3.kill()
    assert proc3.returncode == 143 and "terminated" in err, err
    assert run_jobs(admin, ns) == []
    runs = [a[3] for a in audit_rows(p) if a[1] == "run"]  # the timed out, interrupted and terminated runs
    assert [(d["exit_code"], d["reason"].split(":")[0]) for d in runs] == [
        (1, "DeadlineExceeded"), (130, "interrupted"), (143, "terminated")], runs


def test_run_refusals_are_clear(kproject: KubeProject) -> None:
    p = kproject
    proc = p.cli("run", "--env", "kube", "--", "true")
    assert proc.returncode == 2 and "nothing serves in kube yet" in proc.stderr, proc.stderr
    proc = p.cli("run", "--env", "kube", "-i", "--", "sh")
    assert proc.returncode == 2 and "-i/--interactive is not supported on kubernetes" in proc.stderr
    proc = p.cli("run", "--env", "kube", "--timeout", "soon", "--", "true")
    assert proc.returncode == 2 and "--timeout" in proc.stderr
    proc = p.cli("run", "--env", "kube", "--release", "r20200101000000-abcdef0", "--", "true")
    assert proc.returncode == 2 and "has no record" in proc.stderr, proc.stderr
    for out in (proc.stdout, proc.stderr):
        assert "Traceback" not in out
