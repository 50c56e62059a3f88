"""`shipyard verify` as a user runs it: a real process, a real spec, a real server; exit codes and --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SPEC = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.staging]
port = {port}
[environments.staging.verify]
rate = 100
duration = "5m"
{extra}
"""


def _project(tmp_path: Path, url: str, extra: str) -> Path:
    port = int(url.rsplit(":", 1)[1])
    (tmp_path / "shipyard.toml").write_text(SPEC.format(port=port, extra=extra))
    return tmp_path


def _verify(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipyard", "verify", "--env", "staging", *args],
                          cwd=project, capture_output=True, text=True, timeout=120)


def test_go_json_shape_and_report(server: str, tmp_path: Path) -> None:
    project = _project(tmp_path, server, 'thresholds = { http_req_failed = ["rate<0.01"], http_reqs = ["count==100"] }')
    proc = _verify(project, "--duration", "1s", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is the JSON document and nothing else
    assert {"go", "rate_requested", "rate_achieved", "requests", "failed_rate", "latency_ms", "thresholds",
            "report", "env"} <= set(doc)
    assert doc["go"] is True and doc["requests"] == 100 and doc["rate_requested"] == 100
    assert set(doc["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert [set(t) for t in doc["thresholds"]] == [{"metric", "expr", "observed", "ok"}] * 2
    report = Path(doc["report"])
    assert report.parent == project / ".shipyard" / "reports" and report.exists()


def test_no_go_exits_99_and_human_output(server: str, tmp_path: Path) -> None:
    project = _project(tmp_path, server, 'thresholds = { http_req_duration = ["p(95)<0.001"] }')
    out = tmp_path / "r.html"
    proc = _verify(project, "--duration", "1s", "--rate", "50", "--report", str(out))
    assert proc.returncode == 99, proc.stderr
    assert "NO-GO" in proc.stdout and "p(95)<0.001" in proc.stdout and "FAIL" in proc.stdout
    assert f"report: {out}" in proc.stdout.replace("\n", "")
    assert out.exists()
    assert "verify no-go" in proc.stderr


def test_no_go_with_json_still_prints_the_document(server: str, tmp_path: Path) -> None:
    project = _project(tmp_path, server, 'thresholds = { http_reqs = ["rate>=1000"] }')
    proc = _verify(project, "--duration", "1s", "--json")
    assert proc.returncode == 99
    doc = json.loads(proc.stdout)
    assert doc["go"] is False and doc["thresholds"][0]["ok"] is False


def test_malformed_threshold_exits_2_naming_it(tmp_path: Path) -> None:
    project = _project(tmp_path, "http://127.0.0.1:8200", 'thresholds = { http_req_duration = ["p95 < 500ms"] }')
    proc = _verify(project, "--json")
    assert proc.returncode == 2
    assert "environments.staging.verify.thresholds.http_req_duration[0]" in proc.stderr
    assert proc.stdout == ""


def test_bad_duration_exits_2(server: str, tmp_path: Path) -> None:
    project = _project(tmp_path, server, "")
    proc = _verify(project, "--duration", "soon")
    assert proc.returncode == 2 and "--duration" in proc.stderr
