"""`shipyard init` shows the shipped alert rules (in its output and the file it writes) and the [logs]
and export settings, commented, in a form that loads when uncommented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.engine.alerting.rules import DEFAULTS
from shipyard.primitives.spec import load_spec


def test_init_lists_default_rules_and_log_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["init", "--run", "python3 app.py"])
    assert r.exit_code == 0, r.stderr
    text = (tmp_path / "shipyard.toml").read_text()
    for d in DEFAULTS:
        assert f"{d.name} ({d.expr})" in r.stdout
        assert re.search(rf"^#.*\b{d.name}\s+{re.escape(d.expr)}", text, re.M), d.name
    assert "cert_expires_in" in text and "shipyard export prometheus" in text
    # The commented [logs] block is valid as written.
    block = re.search(r"^# \[logs\]\n((?:# \w+ = .*\n)+)", text, re.M)
    assert block is not None
    (tmp_path / "shipyard.toml").write_text(text + "\n[logs]\n" + re.sub(r"^# ", "", block.group(1), flags=re.M))
    assert load_spec(tmp_path / "shipyard.toml").logs.max_age == 14 * 86400
