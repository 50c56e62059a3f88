"""`shipyard export prometheus`: the rule file passes the real `promtool check rules` and `promtool test
rules` (a generated test file whose input series make every rule fire after its `for`, with the same
annotation Prometheus renders), the scrape config passes `promtool check config`; and every shipyard
series has a PromQL form over the series the endpoint exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.engine.alerting.export_prometheus import promql_of, rule_file
from shipyard.engine.alerting.rules import rules_for
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.alerting import SERIES

from .promtest import promtool_tests

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="needs promtool (Debian package prometheus, "
                                    "scripts/setup-system.sh)")

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.staging]
port = 8201
[environments.prod]
port = 8301

[[alerts]]
name = "Idle"
env = "staging"
expr = "rps < 1"
for = "2m"
[[alerts]]
name = "LowAvailability"
expr = "availability < 99.5%"
for = "10m"
keep_firing_for = "5m"
runbook_url = "https://wiki.example/runbooks/availability"
[[alerts]]
name = "SlowMedian"
env = "prod"
expr = "p50 >= 250ms"
for = "90s"
[[alerts]]
name = "TailLatency"
expr = "p99 > 1s"
[[alerts]]
name = "Busy"
expr = "cpu > 80%"
for = "5m"
keep_firing_for = "3m"
[[alerts]]
name = "Flapping"
expr = "restarts > 3"
summary = "{{ env }}: {{ value }} restarts in 10 minutes (threshold {{ threshold }})"
[[alerts]]
name = "Unhealthy"
expr = "health_failures >= 3"
for = "1m"
[[alerts]]
name = "DbBackupOld"
env = "prod"
expr = 'backup_age{source="db"} > 2h'
[[alerts]]
name = "DbBackupFailed"
expr = 'backup_failed{source="db"} > 0'
[[alerts]]
name = "CertSoon"
expr = "cert_expires_in < 14d"
severity = "warning"
summary = "{{ alertname }}: the certificate of {{ env }} expires in {{ value }}"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("export")
    (d / "shipyard.toml").write_text(SPEC)
    return d


def export(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["export", *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_series_has_a_promql_form_over_exported_names() -> None:
    # The names the endpoint's code emits (families and the names of loops over them).
    exported = set(re.findall(r'"((?:http|router|shipyard)_[a-z_]+)"', _source("shipyard/control/metrics_export.py")))
    for series in SERIES:
        expr = promql_of(series, "prod")
        names = set(re.findall(r"\b([a-z_]+)\{", expr))
        assert names, series
        base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
        assert base <= exported, (series, base - exported)


def _source(rel: str) -> str:
    import shipyard

    return (Path(shipyard.__file__).parent.parent / rel).read_text()


@needs_promtool
def test_exported_rules_pass_promtool_check_and_test(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "prom"
    code, stdout, stderr = export(project, monkeypatch, "prometheus", "--out", str(out), "--target",
                                  "127.0.0.1:9420")
    assert code == 0, stderr
    spec = load_spec(project / "shipyard.toml")
    rules = rules_for(spec)
    doc = _json_part((out / "shipyard-rules.yml").read_text())
    exported = [(g["name"], r) for g in doc["groups"] for r in g["rules"]]
    assert len(exported) == len(rules) == 2 * 7 + 2 * 7 + 3  # defaults, rules for every env, one-env rules
    by_key = {(r["alert"], r["labels"]["env"]): r for _, r in exported}
    he = by_key[("HighErrorRate", "prod")]
    assert (he["for"], he["keep_firing_for"], he["labels"]["severity"]) == ("5m", "2m", "critical")
    assert he["expr"].endswith("> 0.05")
    assert by_key[("LowAvailability", "staging")]["keep_firing_for"] == "5m"
    assert by_key[("SlowMedian", "prod")]["for"] == "1m30s"
    assert ("SlowMedian", "staging") not in by_key

    check = subprocess.run([promtool, "check", "rules", str(out / "shipyard-rules.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout
    config = subprocess.run([promtool, "check", "config", str(out / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    assert config.returncode == 0, config.stdout + config.stderr

    tests = out / "shipyard-rules.test.yml"
    tests.write_text(json.dumps(promtool_tests(rules, "shipyard-rules.yml"), indent=1))
    doc = promtool_tests(rules, "shipyard-rules.yml")
    kept = [t for t in doc["tests"] if t["name"].endswith("keep_firing_for")]
    assert {t["name"] for t in kept} == {"Busy on prod: keep_firing_for", "Busy on staging: keep_firing_for"}
    run = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "SUCCESS" in run.stdout


@needs_promtool
def test_promtool_test_fails_when_a_threshold_differs(project: Path, tmp_path: Path) -> None:
    """The generated test is not vacuous: the same test against a rule file with HighErrorRate's threshold
    raised above the input's error rate fails."""
    spec = load_spec(project / "shipyard.toml")
    rules = [r for r in rules_for(spec) if r.name == "HighErrorRate" and r.env == "prod"]
    text = rule_file(spec).text.replace("> 0.05", "> 0.5")
    (tmp_path / "rules.yml").write_text(text)
    (tmp_path / "t.yml").write_text(json.dumps(promtool_tests(rules, "rules.yml")))
    run = subprocess.run([promtool, "test", "rules", str(tmp_path / "t.yml")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0
    assert "HighErrorRate" in run.stdout + run.stderr


def _json_part(text: str) -> dict[str, object]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


def test_prints_the_rule_file_and_bad_input_exits_2(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    code, stdout, _ = export(project, monkeypatch, "prometheus")
    assert code == 0 and stdout.startswith("# shipyard svc")
    assert "backup_age: a source whose runs all failed" in stdout  # the differences are said
    assert _json_part(stdout)["groups"]
    code, _, stderr = export(project, monkeypatch, "prometheus", "--target", "nowhere")
    assert code == 2 and "--target" in stderr and "Traceback" not in stderr
    (tmp_path / "file").write_text("")
    code, _, stderr = export(project, monkeypatch, "prometheus", "--out", str(tmp_path / "file"))
    assert code == 2 and "--out" in stderr
