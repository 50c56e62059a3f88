"""The dashboard's backups page on real backups and drills: the project of tests/backup/test_cli.py (files and
sqlite sources into a local repository, a real control plane), `shipyard backup run` and two
`shipyard backup drill`s — one within the objectives, one after the RTO is tightened to 1 ms — then the page
in headless Debian Chromium: every backup listed, each drill's restore time and data age against the
objective it was judged by, and its outcome; neither the backup key nor the master key on the page."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backup.test_cli import MASTER_KEY, TOML, Project, backup_project, sh

__all__ = ["backup_project"]  # the fixture of tests/backup, shared

ARTIFACTS = Path(os.environ.get("SHIPYARD_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
CELL = re.compile(r"^([\d.]+) ?(ms|s|min) (≤|>) (.+)$")


def _seconds(cell: str) -> tuple[float, str, str]:
    """``48 ms ≤ 1h`` → (0.048, "≤", "1h")."""
    m = CELL.match(cell.strip())
    assert m is not None, cell
    value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "min": 60.0}[m.group(2)]
    return value, m.group(3), m.group(4)


def test_the_backups_page_shows_real_backups_and_drills_against_rto_and_rpo(backup_project: Project,
                                                                           chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    p = backup_project
    root = p.dir
    # 4 MiB that do not compress: restoring them takes well over 1 ms on any machine (the missed drill).
    (root / "uploads" / "big.bin").write_bytes(os.urandom(4 << 20))
    p.ok("up", "--detach", timeout=90)
    run = sh(root, "run", "--env", "staging")
    assert run.returncode == 0, run.stdout + run.stderr
    listed = json.loads(sh(root, "list", "--env", "staging", "--json").stdout)["backups"]
    assert sorted(b["source"] for b in listed) == ["cache", "uploads"]
    within = sh(root, "drill", "--env", "staging", "--json")
    assert within.returncode == 0, within.stdout + within.stderr
    passed: list[dict[str, Any]] = json.loads(within.stdout)
    (root / "shipyard.toml").write_text(TOML.format(port=p.port, rpo="1h").replace('rto = "1h"', 'rto = "1ms"'))
    tight = sh(root, "drill", "--env", "staging", "--json")
    assert tight.returncode == 1, tight.stdout + tight.stderr
    missed: list[dict[str, Any]] = json.loads(tight.stdout)
    assert not next(d for d in missed if d["source"] == "uploads")["ok"]

    link = str(p.json("dashboard")["login_link"])  # type: ignore[index]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 600})
            page.goto(link)
            page.goto(f"http://127.0.0.1:{urlsplit(link).port}/backups?env=staging")
            objectives = page.locator("p.kv").inner_text()
            assert "RTO 1 ms" in objectives and "RPO 60.0 min" in objectives and "uploads, cache" in objectives
            rows = page.locator("#backups tr.backup")
            shown = {tuple(rows.nth(i).locator("td").all_inner_texts()[:3]) for i in range(rows.count())}
            assert shown == {(b["id"], b["source"], b["kind"]) for b in listed}
            drills = page.locator("#drills tr.drill")
            assert drills.count() == 4, "two drills of two sources"
            # Newest drill first; each row judged by the objectives of its day, not by today's.
            for i, (d, rto_then) in enumerate([(d, "1 ms") for d in missed] + [(d, "60.0 min") for d in passed]):
                row = drills.nth(i)
                cells = row.locator("td").all_inner_texts()
                assert cells[1] == d["source"] and row.get_attribute("data-ok") == str(d["ok"]).lower()
                assert cells[2] == ("ok" if d["ok"] else "failed")
                rto, rto_op, rto_obj = _seconds(cells[3])
                rpo, rpo_op, rpo_obj = _seconds(cells[4])
                assert abs(rto - d["rto_s"]) <= max(0.001, d["rto_s"] * 0.06), (cells[3], d["rto_s"])
                assert abs(rpo - d["rpo_s"]) <= max(0.001, d["rpo_s"] * 0.06), (cells[4], d["rpo_s"])
                assert (rto_obj, rpo_obj) == (rto_then, "60.0 min")
                rto_ok = next(c["ok"] for c in d["checks"] if c["name"] == "rto")
                assert rto_op == ("≤" if rto_ok else ">") and rpo_op == "≤"
                assert row.locator("td.rto span").get_attribute("class") == ("ok" if rto_ok else "bad")
                assert ("rto FAILED" in cells[5]) == (not rto_ok)
            assert drills.nth(2).get_attribute("data-ok") == "true" and drills.nth(3).get_attribute("data-ok") == "true"
            key = (root / ".shipyard" / "backup.key").read_text().strip()
            assert key and key not in page.content() and MASTER_KEY not in page.content(), "no key on the page"
            page.screenshot(path=str(ARTIFACTS / "dashboard-backups.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard-backups.png").stat().st_size > 20_000
