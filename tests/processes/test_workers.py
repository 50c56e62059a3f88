"""Process types end to end: a Flask web process and a Celery worker on a real Redis, deployed by the real
control plane. Tasks queued before, during and after a deploy are each processed exactly once; a task
running at the switch finishes inside the old worker's grace."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Project

redis = pytest.importorskip("redis")
pytest.importorskip("celery")

APP = Path(__file__).resolve().parents[2] / "examples" / "celeryapp"
PY = sys.executable  # its venv has flask, celery and redis (the dev extras)

SPEC = f"""[app]
name = "tasks"

[app.health]
path = "/health"
interval = "0.3s"
start_period = "10s"

[processes]
web = "{PY} app.py"
worker = "{PY} -m celery -A tasks worker --pool solo --without-gossip --without-mingle --without-heartbeat -n w-$SHIPYARD_INSTANCE@%h"

[defaults]
strategy = "blue-green"
drain_timeout = "5s"
deploy_timeout = "60s"
scale_down_delay = "0s"

[environments.staging]
port = {{port}}
replicas = 1

[environments.staging.accessories]
cache = {{{{ kind = "redis" }}}}                # REDIS_URL, for the web process and the workers

[environments.staging.processes.worker]
replicas = 2
stop = {{{{ signal = "SIGTERM", grace = "30s" }}}}
"""


def queue(port: int, task_id: str, seconds: float = 0.0, until_shutdown: bool = False) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", f"/tasks/{task_id}?seconds={seconds}&until_shutdown={int(until_shutdown)}")
        return conn.getresponse().status
    finally:
        conn.close()


def test_tasks_before_during_and_after_a_deploy_are_each_processed_once(project: Project) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/setup-system.sh installs it)")
    for f in ("app.py", "tasks.py"):
        shutil.copy(APP / f, project.dir / f)
    (project.dir / "shipyard.toml").write_text(SPEC.format(port=project.port))
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    acc: Any = project.json("accessory", "status", "--env", "staging")
    url = acc["accessories"][0]["url"]
    assert acc["accessories"][0]["running"] and url.startswith("redis://127.0.0.1:")
    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    st: Any = project.json("status", "--env", "staging")
    procs = sorted(i["process"] for i in st["instances"])
    assert procs == ["web", "worker", "worker"], st["instances"]

    r = redis.Redis.from_url(url)
    sent: list[str] = []
    for i in range(20):
        assert queue(project.port, f"before-{i}") == 202
        sent.append(f"before-{i}")
    # A long task that the old workers are running when the switch comes: it works until its worker is
    # asked to stop (then one more second), at most 25 s — inside the 30 s grace.
    assert queue(project.port, "long", seconds=25, until_shutdown=True) == 202
    sent.append("long")
    deadline = time.monotonic() + 20
    while not r.hexists("started", "long"):
        assert time.monotonic() < deadline, "the long task never started"
        time.sleep(0.05)

    project.commit("v2")
    plan: Any = project.json("deploy", "--env", "staging", "--plan")
    kinds = [(s["kind"], s["params"].get("process")) for s in plan["steps"]]
    assert ("start", "worker") in kinds and plan["processes"]["worker"]["replicas"] == 2
    assert plan["processes"]["worker"]["stop"]["grace_s"] == 30 and not plan["processes"]["worker"]["routed"]

    stop_feed = threading.Event()
    during: list[str] = []

    def feed() -> None:
        n = 0
        while not stop_feed.is_set() and n < 400:
            if queue(project.port, f"during-{n}") == 202:
                during.append(f"during-{n}")
            n += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    deploy = subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "staging", "--json"],
                              cwd=project.dir, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    feeder.start()
    out, err = deploy.communicate(timeout=120)
    stop_feed.set()
    feeder.join(timeout=30)
    second = json.loads(out)
    assert second["outcome"] == "succeeded", (second, err)
    switch_done = time.time()
    sent += during
    for i in range(20):
        assert queue(project.port, f"after-{i}") == 202
        sent.append(f"after-{i}")
    assert len(during) > 10  # the feed ran across the deploy

    deadline = time.monotonic() + 60
    while r.hlen("processed") < len(sent):
        assert time.monotonic() < deadline, f"{r.hlen('processed')} of {len(sent)} tasks processed"
        time.sleep(0.1)
    time.sleep(1.0)  # a task run twice would show up here
    counts = {k.decode(): int(v) for k, v in r.hgetall("processed").items()}
    assert set(counts) == set(sent)
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n != 1}
    # The long task ran on the old release's worker and finished there, inside its 30 s grace.
    assert r.hget("done_by", "long").decode() == first["release"]
    assert float(r.hget("finished", "long")) <= switch_done
    assert int(r.hget("processed", "long")) == 1
    assert {r.hget("done_by", f"after-{i}").decode() for i in range(20)} == {second["release"]}

    # The old workers were stopped after the switch, and the stop waited for the long task (inside the grace).
    names = [(s["name"], s["params"].get("process")) for s in second["steps"]]
    switch = next(i for i, s in enumerate(second["steps"]) if s["name"] == "route" and s["params"].get("commit"))
    assert names.index(("start", "worker")) < switch
    stop = next(s for s in second["steps"][switch:] if s["name"] == "stop" and "worker" in s["description"])
    long_end = float(r.hget("finished", "long"))
    assert r.hexists("saw_shutdown", "long")  # it was running when its worker was told to stop
    assert stop["started_at"] < long_end <= stop["started_at"] + stop["duration_s"] + 0.5, (stop, long_end)
    assert stop["duration_s"] < 30
    st = project.json("status", "--env", "staging")
    workers = [i for i in st["instances"] if i["process"] == "worker"]  # type: ignore[index]
    assert len(workers) == 2 and {w["release"] for w in workers} == {second["release"]}, workers
    assert st["processes"]["worker"] == {"running": 2, "ready": 2, "releases": [second["release"]],  # type: ignore[index]
                                         "routed": False}

    # Only the worker's output, by process type.
    logs = project.ok("logs", "--env", "staging", "--process", "worker", "-n", "400").stdout
    assert "[queues]" in logs and "worker-" in logs, logs[-2000:]
    assert "Running on http" not in logs  # the web process' (werkzeug) banner is not there

    # A rollback brings the old release's workers back (and stops the new ones).
    back: Any = project.json("rollback", "--env", "staging")
    assert back["outcome"] == "succeeded", back
    st = project.json("status", "--env", "staging")
    workers = [i for i in st["instances"] if i["process"] == "worker"]  # type: ignore[index]
    assert len(workers) == 2 and {w["release"] for w in workers} == {first["release"]}, workers
    assert queue(project.port, "after-rollback") == 202
    deadline = time.monotonic() + 30
    while not r.hexists("done_by", "after-rollback"):
        assert time.monotonic() < deadline, "no worker took the task after the rollback"
        time.sleep(0.05)
    assert r.hget("done_by", "after-rollback").decode() == first["release"]
