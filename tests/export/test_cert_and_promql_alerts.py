"""Alert series beyond the history: `cert_expires_in` from the router's TLS certificate file (in the
evaluator and on /metrics), and `promql:` expressions evaluated by a real Prometheus the suite starts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shipyard.control.alerts import Evaluator
from shipyard.control.certs import CertExpiry
from shipyard.control.metrics_export import MetricsExporter, RouterCounters
from shipyard.control.paths import Paths
from shipyard.control.routerlink import RouterLink
from shipyard.control.specwatch import SpecWatch
from shipyard.control.supervisor import Supervisor
from shipyard.errors import ConfigError
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.store import open_store

BASE = """\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.staging]
port = 8201
[environments.prod]
port = 8301
"""


def write_cert(path: Path, days: float) -> float:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    not_after = (now + dt.timedelta(days=days)).replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return not_after.timestamp()


def test_cert_expires_in_fires_for_the_environment_whose_certificate_is_near(tmp_path: Path) -> None:
    soon = write_cert(tmp_path / "certs" / "prod.pem", days=5)
    write_cert(tmp_path / "certs" / "staging.pem", days=60)
    (tmp_path / "shipyard.toml").write_text(BASE.replace(
        "port = 8301", 'port = 8301\n[environments.prod.router]\ntls = { cert = "certs/prod.pem", key = "certs/prod.key" }')
        .replace("port = 8201", 'port = 8201\n[environments.staging.router]\ntls = { cert = "certs/staging.pem", '
                 'key = "certs/staging.key" }') + '[[alerts]]\nname = "CertSoon"\nexpr = "cert_expires_in < 14d"\n')
    store = open_store(None, tmp_path / ".shipyard")
    clock = ManualClock(time.time())
    certs = CertExpiry()
    ev = Evaluator(store=store, clock=clock, specs=SpecWatch(tmp_path), certs=certs)
    fired = [(r.name, r.env, change) for r, _s, change in ev.evaluate() if r.name == "CertSoon"]
    assert fired == [("CertSoon", "prod", "firing")]
    view = next(v for v in ev.view("prod") if v.rule.name == "CertSoon")
    assert view.state.value == pytest.approx(soon - clock.time(), abs=1)
    assert "4d" in view.to_json()["summary"] or "5d" in view.to_json()["summary"]
    # Renewed at the same path: the new file is read (cache keyed by mtime and size) and it resolves.
    time.sleep(0.01)
    write_cert(tmp_path / "certs" / "prod.pem", days=90)
    assert [(r.env, c) for r, _s, c in ev.evaluate() if r.name == "CertSoon"] == [("prod", "resolved")]
    spec = load_spec(tmp_path / "shipyard.toml")
    assert set(certs.by_env(spec)) == {"prod", "staging"}
    # The same expiry on /metrics, beside the other series the exported rules read.
    exporter = MetricsExporter(counters=RouterCounters(), link=RouterLink(Paths(tmp_path), clock),
                               supervisor=Supervisor(clock=clock, on_change=lambda st: None, on_event=lambda *a: None),
                               store=store, alerts=lambda: [], certs=lambda: certs.by_env(spec))
    text = asyncio.run(exporter.render())
    at = certs.by_env(spec)["prod"]
    assert f'shipyard_cert_expiry_timestamp_seconds{{env="prod"}} {at:.1f}' in text
    for family in ("shipyard_instance_cpu_ratio", "shipyard_instance_memory_ratio", "shipyard_backup_last_run_failed"):
        assert f"# TYPE {family} gauge" in text
    store.close()


# -- promql: against a real Prometheus -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as r:
            return bool(json.loads(r.read())["data"]["result"])
    except OSError:
        return False


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs the prometheus package (scripts/setup-system.sh)")
    d = tmp_path_factory.mktemp("prom")
    port = _free_port()
    (d / "prometheus.yml").write_text(json.dumps({  # it scrapes itself: `up{job="prometheus"}` is 1
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))
    log = (d / "log").open("w")
    proc = subprocess.Popen([binary, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert time.monotonic() < deadline, (d / "log").read_text()[-2000:]
            assert proc.poll() is None, (d / "log").read_text()[-2000:]
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


PROMQL_RULES = """
[[alerts]]
name = "PromUp"
expr = 'promql: label_replace(up{{job="prometheus"}}, "env", "{{{{ env }}}}", "", "") and on(env) label_replace(vector(1), "env", "prod", "", "")'
severity = "info"
summary = "{{{{ env }}}}: up is {{{{ value }}}}"
[[alerts]]
name = "PromDown"
expr = 'promql: up{{job="prometheus"}} == 0'
"""


def test_promql_rule_evaluated_by_a_real_prometheus(tmp_path: Path, prometheus: str) -> None:
    (tmp_path / "shipyard.toml").write_text(BASE + f'[metrics]\nprometheus = "{prometheus}"\n'
                                            + PROMQL_RULES.format())
    store = open_store(None, tmp_path / ".shipyard")
    clock = ManualClock(time.time())
    ev = Evaluator(store=store, clock=clock, specs=SpecWatch(tmp_path))
    changes = {(r.name, r.env, c) for r, _s, c in ev.evaluate() if r.name.startswith("Prom")}
    # {{ env }} is the environment: the query matches for prod only; `up == 0` returns nothing.
    assert changes == {("PromUp", "prod", "firing")}
    view = next(v for v in ev.view("prod") if v.rule.name == "PromUp")
    assert view.state.value == 1.0 and view.to_json()["summary"] == "prod: up is 1"
    store.close()


def test_promql_with_prometheus_down_is_no_value_and_no_crash(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    (tmp_path / "shipyard.toml").write_text(BASE + f'[metrics]\nprometheus = "{dead}"\n' + PROMQL_RULES.format())
    store = open_store(None, tmp_path / ".shipyard")
    ev = Evaluator(store=store, clock=ManualClock(time.time()), specs=SpecWatch(tmp_path))
    assert [c for r, _s, c in ev.evaluate() if r.name.startswith("Prom")] == []
    assert all(v.state.value is None for v in ev.view() if v.rule.name.startswith("Prom"))
    store.close()


def test_promql_needs_a_prometheus_and_a_query(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(BASE + '[[alerts]]\nname = "P"\nexpr = "promql: up == 0"\n'
                                            '[[alerts]]\nname = "Q"\nexpr = "promql:"\n'
                                            '[metrics]\nprometheus = "ftp://x"\n')
    with pytest.raises(ConfigError) as exc:
        load_spec(tmp_path / "shipyard.toml")
    text = "\n".join(exc.value.problems)
    assert "metrics.prometheus: " in text and "alerts[1].expr: " in text, text
    (tmp_path / "shipyard.toml").write_text(BASE + '[[alerts]]\nname = "P"\nexpr = "promql: up == 0"\n')
    with pytest.raises(ConfigError) as exc:
        load_spec(tmp_path / "shipyard.toml")
    assert any(p.startswith("alerts[0].expr: ") and "[metrics] prometheus" in p for p in exc.value.problems)
