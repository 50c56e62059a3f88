"""Metrics on by default, scraped by a real Prometheus; history, alerts and events through the CLI.

The suite starts Prometheus itself (Debian package `prometheus`, scripts/setup-system.sh) on a free
port, scraping the control plane's `[metrics] listen` endpoint every second, and asks its HTTP API for
the series shipyard promises.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Project, wait_for

sys_prom = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(sys_prom is None, reason="needs the prometheus package (scripts/setup-system.sh)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics_port() -> int:
    return _free_port()


@pytest.fixture
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[str]:
    port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "shipyard", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    assert sys_prom is not None
    proc = subprocess.Popen([sys_prom, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _get(f"{url}/-/ready") is not None, timeout=30), (tmp_path / "prometheus.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    text = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if text is None:
        return []
    data = json.loads(text)
    assert data["status"] == "success", data
    return list(data["data"]["result"])


SPEC_EXTRA = """
[metrics]
listen = "127.0.0.1:{port}"

[[alerts]]
name = "TrafficSeen"
env = "staging"
expr = "rps[1m] > 0"   # a minute's window: one burst of requests keeps it firing through the test
severity = "info"
summary = "{{{{ env }}}} serves {{{{ value }}}} req/s"
"""


def test_prometheus_scrapes_router_and_control_plane_series(project: Project, metrics_port: int,
                                                            prometheus: str) -> None:
    project.write_spec(replicas=2, extra=SPEC_EXTRA.format(port=metrics_port))
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    project.ok("deploy", "--env", "staging", timeout=120)
    sent = 0
    for _ in range(40):
        assert project.get("/")[0] == 200
        sent += 1
    assert project.get("/nope")[0] == 404
    sent += 1

    def scraped_all() -> bool:
        return sum(float(r["value"][1]) for r in _query(prometheus, 'http_requests_total{env="staging"}')) >= sent
    assert wait_for(scraped_all, timeout=40, interval=0.5), _get(f"http://127.0.0.1:{metrics_port}/metrics")

    codes = {r["metric"]["code"] for r in _query(prometheus, 'http_requests_total{env="staging"}')}
    assert {"2xx", "4xx"} <= codes
    release = _query(prometheus, 'http_requests_total{env="staging",code="2xx"}')[0]["metric"]["release"]
    assert release.startswith("r")
    buckets = _query(prometheus, 'http_request_duration_seconds_bucket{env="staging",le="+Inf"}')
    assert sum(float(b["value"][1]) for b in buckets) >= sent
    p95 = _query(prometheus, 'histogram_quantile(0.95, sum by (le) (http_request_duration_seconds_bucket{env="staging"}))')
    assert p95 and 0 < float(p95[0]["value"][1]) < 2
    assert _query(prometheus, 'shipyard_deployments_total{env="staging",outcome="succeeded"} == 1')
    assert _query(prometheus, 'shipyard_instances_up{env="staging"} == 2')
    for name in ("http_requests_in_flight", "router_upstream_errors_total", "shipyard_instance_restarts_total",
                 "shipyard_instance_cpu_ratio", "shipyard_instance_memory_ratio"):  # the exported rules' cpu, memory
        assert _query(prometheus, f'{name}{{env="staging"}}'), name
    # Labels are bounded: no path of a request appears anywhere.
    assert "/nope" not in (_get(f"http://127.0.0.1:{metrics_port}/metrics") or "")

    # The same traffic in the history, through the CLI (raw points, all releases together).
    def recorded() -> dict[str, Any] | None:
        doc = project.json("metrics", "--env", "staging", "--since", "10m", "--step", "10s")
        assert isinstance(doc, dict)
        return doc if sum(p["requests"] for p in doc["total"]) >= sent else None
    assert wait_for(recorded, timeout=30, interval=1.0)
    doc = recorded()
    assert doc is not None and sum(p["requests"] for p in doc["total"]) == sent
    assert release in doc["releases"]
    assert any(p["up"] == 2 and p["rss"] for p in doc["total"])

    # The rule fires (for = 0), its event is in the event log, the firing alert is exported too.
    def firing() -> bool:
        doc = project.json("alerts", "--env", "staging")
        assert isinstance(doc, dict)
        return any(r["name"] == "TrafficSeen" and r["state"] == "firing" for r in doc["rules"])
    assert wait_for(firing, timeout=30, interval=1.0)
    events = project.json("events", "--env", "staging", "--since", "10m")
    assert isinstance(events, dict)
    assert any(e["kind"] == "alert_firing" and e["data"]["alertname"] == "TrafficSeen" for e in events["events"])
    assert wait_for(lambda: _query(prometheus, 'shipyard_alert_firing{alertname="TrafficSeen"}'), timeout=15)
    rules = project.json("alerts")
    assert isinstance(rules, dict)
    assert {"HighErrorRate", "HighLatency", "HighMemory", "InstanceDown"} <= {r["name"] for r in rules["rules"]}
    # Human output: one line per row, nothing cut off a terminal.
    table = project.ok("metrics", "--env", "staging", "--since", "10m", "--step", "10s").stdout
    assert "rps" in table.splitlines()[0] and "p95" in table
    listing = project.ok("alerts", "--env", "staging").stdout
    assert any("TrafficSeen" in line and "firing" in line for line in listing.splitlines())
    assert "alert_firing  TrafficSeen firing: staging serves" in project.ok("events", "--since", "10m").stdout

    # Logs: the control plane writes JSON lines, a deployment's carry its ids, and `logs --trace` finds them;
    # a request's line in the router's access log is found by text and by its trace id.
    control = [json.loads(x) for x in (project.dir / ".shipyard" / "logs" / "control.log").read_text().splitlines()
               if x.startswith("{")]
    deploy_lines = [d for d in control if d.get("env") == "staging" and "deployment" in d]
    assert deploy_lines and len({d["trace_id"] for d in deploy_lines}) == 1, control[-20:]
    trace = deploy_lines[0]["trace_id"]

    def found(*args: str) -> list[dict[str, Any]]:
        out = project.ok("logs", "--env", "staging", "--json", *args).stdout.splitlines()
        return [json.loads(x) for x in out if x.startswith("{")]
    assert [r["instance"] for r in found("--trace", trace)] == ["control"] * min(len(deploy_lines), 50)
    nope = [r for r in found("--router", "--grep", '"path":"/nope"') if r["instance"] == "router"]
    assert len(nope) == 1 and json.loads(nope[0]["line"])["status"] == 404
    request_trace = json.loads(nope[0]["line"])["trace_id"]
    assert [r["line"] for r in found("--trace", request_trace) if r["instance"] == "router"] == [nope[0]["line"]]


@pytest.mark.parametrize(("args", "says"), [
    (("metrics", "--env", "staging", "--since", "yesterday"), "--since"),
    (("metrics", "--env", "staging", "--step", "15s"), "--step"),
    (("metrics", "--env", "nope"), "unknown environment"),
    (("events", "--since", "1x"), "--since"),
    (("alerts", "--env", "nope"), "unknown environment"),
])
def test_bad_flags_exit_2(running: Project, args: tuple[str, ...], says: str) -> None:
    proc = running.cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_broken_alert_rule_exits_2_with_its_key_path(running: Project) -> None:
    spec = running.dir / "shipyard.toml"
    spec.write_text(spec.read_text() + '\n[[alerts]]\nname = "X"\nexpr = "latency > 2s"\nfor = "5 minutes"\n')
    for args in (("alerts",), ("status",), ("metrics", "--env", "staging")):
        proc = running.cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "alerts[0].expr: unknown series 'latency'" in proc.stderr
        assert "alerts[0].for: expected a duration" in proc.stderr and "Traceback" not in proc.stderr


def test_sigkill_while_an_alert_fires_neither_loses_nor_repeats_it(project: Project, metrics_port: int) -> None:
    import os
    import signal

    import psutil

    project.write_spec(replicas=1, extra=SPEC_EXTRA.format(port=metrics_port) + """
[[alerts]]
name = "Up"
env = "staging"
expr = "up > 0"
for = "20s"
""")
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    project.ok("deploy", "--env", "staging", timeout=120)

    def state(name: str) -> str | None:
        doc = project.json("alerts", "--env", "staging")
        assert isinstance(doc, dict)
        return next((r["state"] for r in doc["rules"] if r["name"] == name), None)
    assert wait_for(lambda: state("Up") == "pending", timeout=40, interval=0.5)
    assert project.get("/")[0] == 200
    assert wait_for(lambda: state("TrafficSeen") == "firing", timeout=40, interval=0.5)

    pid = project.control_pid()
    assert pid
    assert project.get("/")[0] == 200  # traffic in the window across the restart
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 10)
    project.ok("up", "--detach", timeout=90)
    # `for` counts across the restart: "Up" fires once its 20 s have passed, without a second "pending".
    assert wait_for(lambda: state("Up") == "firing", timeout=60, interval=0.5)
    assert state("TrafficSeen") == "firing"
    doc = project.json("events", "--env", "staging", "--since", "10m")
    assert isinstance(doc, dict)
    kinds = [(e["data"]["alertname"], e["kind"]) for e in doc["events"] if e["kind"].startswith("alert_")]
    assert kinds.count(("TrafficSeen", "alert_firing")) == 1, kinds
    assert kinds.count(("Up", "alert_pending")) == 1 and kinds.count(("Up", "alert_firing")) == 1, kinds
