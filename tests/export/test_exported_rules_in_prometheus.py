"""The exported rule file loaded into a real Prometheus that scrapes shipyard's real /metrics endpoint
(the control plane's exporter and server, fed router slices as the recorder feeds them): the rules whose
condition holds fire, the others stay silent."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.control.metrics_export import MetricsExporter, MetricsServer, RouterCounters
from shipyard.control.paths import Paths
from shipyard.control.routerlink import RouterLink
from shipyard.control.supervisor import Supervisor
from shipyard.engine.alerting.export_prometheus import rule_file
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.metrics import bucket_index
from shipyard.primitives.spec import load_spec
from shipyard.primitives.store import open_store

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.prod]
port = 8301
[metrics]
default_alerts = false
[[alerts]]
name = "Errors"
expr = "error_rate > 5%"
[[alerts]]
name = "Traffic"
expr = "rps > 10"
[[alerts]]
name = "Idle"
expr = "rps < 1"
[[alerts]]
name = "Slow"
expr = "p95 > 500ms"
[[alerts]]
name = "Fast"
expr = "p50 < 100ms"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=3) as r:
            return list(json.loads(r.read())["data"]["result"])
    except OSError:
        return []


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[int]:
    """shipyard's /metrics on a free port, its counters fed 50 req/s (20 % 5xx, all at ~800 ms)."""
    store = open_store(None, tmp_path / ".shipyard")
    loop = asyncio.new_event_loop()
    counters = RouterCounters()
    ports: list[int] = []
    stop = threading.Event()

    async def serve() -> None:
        clock = SystemClock()
        exporter = MetricsExporter(counters=counters, link=RouterLink(Paths(tmp_path), clock), store=store,
                                   supervisor=Supervisor(clock=clock, on_change=lambda s: None,
                                                         on_event=lambda *a: None), alerts=lambda: [])
        server = MetricsServer(exporter.render)
        ports.append(await server.start("127.0.0.1", 0))
        sec = int(time.time())
        slow = bucket_index(0.8)
        while not stop.is_set():
            counters.add_reply("prod", {"instances": [{"release": "r1", "slices": [
                {"sec": sec, "status": [0, 0, 40, 0, 0, 10], "histogram": [[slow, 50]]}]}]}, sec + 1)
            sec += 1
            await asyncio.sleep(1.0)
        await server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ports and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ports
    yield ports[0]
    stop.set()
    thread.join(5)
    store.close()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus package (scripts/setup-system.sh)")
def test_exported_rules_fire_in_prometheus_over_the_real_endpoint(tmp_path: Path, endpoint: int) -> None:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    rules = rule_file(load_spec(tmp_path / "shipyard.toml"))
    # The file as exported, evaluated every second instead of 15 s (the test's time, not the rules').
    (tmp_path / "rules.yml").write_text(rules.text.replace('"interval": "15s"', '"interval": "1s"'))
    port = _free_port()
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "shipyard", "static_configs": [{"targets": [f"127.0.0.1:{endpoint}"]}]}]}))
    log = (tmp_path / "prom.log").open("w")
    binary = shutil.which("prometheus")
    assert binary is not None
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        firing: set[str] = set()
        while time.monotonic() < deadline and firing != {"Errors", "Traffic", "Slow"}:
            assert proc.poll() is None, (tmp_path / "prom.log").read_text()[-2000:]
            time.sleep(0.5)
            firing = {a["metric"]["alertname"] for a in _query(url, 'ALERTS{alertstate="firing"}')}
        # 20 % errors at 50 req/s, every request ~800 ms: Errors, Traffic and Slow fire; Idle and Fast not.
        assert firing == {"Errors", "Traffic", "Slow"}, (firing, (tmp_path / "prom.log").read_text()[-1500:])
        value = _query(url, 'ALERTS_FOR_STATE{alertname="Errors"}')
        assert value and value[0]["metric"]["env"] == "prod" and value[0]["metric"]["severity"] == "warning"
        rate = _query(url, rules.document["groups"][0]["rules"][0]["expr"].rsplit(" > ", 1)[0])
        assert rate and float(rate[0]["value"][1]) == pytest.approx(0.2, abs=0.01)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
