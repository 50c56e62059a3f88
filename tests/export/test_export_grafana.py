"""`shipyard export grafana`: the dashboard's structure (what Grafana's import needs) and every query is
PromQL that the real promtool accepts (as recording rules, `$env` set to an environment)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.engine.alerting.export_grafana import expressions

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
"""


@pytest.fixture
def dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["export", "grafana", "--out", "dash/shipyard.json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads((tmp_path / "dash" / "shipyard.json").read_text())
    assert isinstance(doc, dict)
    return doc


def test_dashboard_structure(dashboard: dict[str, object]) -> None:
    doc = dashboard
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("annotations", dict), ("time", dict)):
        assert isinstance(doc[key], kind), key
    panels = doc["panels"]
    assert isinstance(panels, list)
    titles = [p["title"] for p in panels]
    assert {"Requests per second", "Error rate (5xx and unanswered)", "Latency P50 / P95 / P99"} <= set(titles)
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    for p in panels:
        assert p["type"] == "timeseries" and p["targets"], p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs)
        assert all("release" in t["expr"] or "alertname" in t["expr"] for t in p["targets"])  # by release
    latency = next(p for p in panels if p["title"].startswith("Latency"))
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}  # type: ignore[index]
    assert variables["env"]["options"][0]["value"] in ("prod", "staging")
    deploys = [a for a in doc["annotations"]["list"] if a["name"] == "Deploys"]  # type: ignore[index]
    assert deploys and "shipyard_deployments_total" in deploys[0]["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (scripts/setup-system.sh)")
def test_every_query_is_promql_promtool_accepts(dashboard: dict[str, object], tmp_path: Path) -> None:
    exprs = expressions(dashboard)
    assert len(exprs) >= 8
    rules = [{"record": f"shipyard:dashboard:{i}", "expr": e.replace("$env", "prod")} for i, e in enumerate(exprs)]
    path = tmp_path / "dash-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules)} rules found" in run.stdout
    # The check is real: a broken query is refused.
    path.write_text(json.dumps({"groups": [{"name": "d", "rules": [{"record": "x", "expr": exprs[0][:-3]}]}]}))
    bad = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
