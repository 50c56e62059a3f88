"""The status page, incidents, maintenance and reports end to end: the real CLI, control plane, router,
status-page process and instances on loopback. One project for the module (starting it is the cost);
the SIGKILL test runs last."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, free_port, make_project, wait_for  # noqa: E402

SECRET = "s3cr3t-Value-9f8e7d"  # must appear in no page, feed or report


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, int]]:
    p = make_project(tmp_path_factory.mktemp("faces"))
    status_port = free_port()
    p.write_spec(replicas=1, extra=f"""
[status_page]
listen = "127.0.0.1:{status_port}"
title = "Svc - service status"
components = [
  {{ name = "API", env = "staging" }},
  {{ name = "Website", check = {{ url = "http://127.0.0.1:{p.port}/", interval = "1s", conditions = ["status == 200", "response_time < 2s"] }} }},
]
""")
    p.commit("v1")
    try:
        p.ok("up", "--detach", timeout=90)
        p.ok("deploy", "--env", "staging", timeout=120)
        proc = p.cli("secrets", "set", "--env", "staging", "API_KEY=-", input=SECRET)
        assert proc.returncode == 0, proc.stderr
        yield p, status_port
    finally:
        if p.control_pid():
            p.cli("down", timeout=120)
        p.kill_everything()


def _page(port: int) -> str:
    code, _, body = _get(port, "/")
    return body if code == 200 else ""


def test_an_incident_from_the_cli_is_on_the_page_and_in_the_feed_within_5s(proj: tuple[Project, int]) -> None:
    p, port = proj
    assert wait_for(lambda: "Svc - service status" in _page(port), timeout=20), "the page is served"
    # Within 5 s of running the command (its own start-up counted), on the page and in the feed.
    deadline = time.monotonic() + 5
    opened = p.ok("incident", "open", "--component", "API", "--impact", "major", "-m", "Elevated errors on readings")
    iid = int(opened.stdout.strip())
    assert wait_for(lambda: "Elevated errors on readings" in _page(port), timeout=max(0.0, deadline - time.monotonic()))
    assert wait_for(lambda: any(e.title == "Elevated errors on readings"
                                for e in feedparser.parse(_get(port, "/history.atom")[2]).entries),
                    timeout=max(0.0, deadline - time.monotonic()))
    assert time.monotonic() < deadline
    print(f"incident on the page and in the feed {5 - (deadline - time.monotonic()):.2f} s after the command")
    page = _page(port)
    assert 'data-component="API" data-status="partial_outage"' in page
    p.ok("incident", "update", str(iid), "--status", "identified", "-m", "Bad cache node")
    assert wait_for(lambda: "Bad cache node" in _page(port), timeout=5)
    summary: Any = json.loads(_get(port, "/api/v2/summary.json")[2])
    inc = next(i for i in summary["incidents"] if i["id"] == str(iid))
    assert inc["status"] == "identified" and [u["status"] for u in inc["incident_updates"]] == [
        "identified", "investigating"]
    assert summary["status"]["indicator"] == "major"
    p.ok("incident", "resolve", str(iid), "-m", "Fixed")
    assert wait_for(lambda: not json.loads(_get(port, "/api/v2/summary.json")[2])["incidents"], timeout=5)
    feed = feedparser.parse(_get(port, "/history.atom")[2])
    assert not feed.bozo
    entry = next(e for e in feed.entries if e.title == "Elevated errors on readings")
    assert "Resolved" in entry.summary and "Bad cache node" in entry.summary
    bad = p.cli("incident", "open", "--component", "Nope", "-m", "x")
    assert bad.returncode == 2 and "unknown component 'Nope'" in bad.stderr


def test_the_synthetic_check_and_the_uptime_bars(proj: tuple[Project, int]) -> None:
    _, port = proj
    assert wait_for(lambda: 'data-component="Website" data-status="operational"' in _page(port), timeout=10)
    page = _page(port)
    assert page.count("<rect ") == 2 * 90, "90 daily bars per component"
    assert wait_for(lambda: "% uptime" in _page(port).split('data-component="Website"')[1], timeout=10), \
        "today's checks give the check component an uptime"


def test_maintenance_on_answers_503_with_retry_after_outside_allow(proj: tuple[Project, int]) -> None:
    p, port = proj
    assert p.get("/")[0] == 200
    p.ok("maintenance", "on", "--env", "staging", "-m", "Back at 04:00", "--allow", "10.0.0.0/8")
    code, headers, body = _get(p.port, "/")
    assert code == 503 and int(headers["retry-after"]) > 0 and "Back at 04:00" in body
    assert wait_for(lambda: 'data-component="API" data-status="under_maintenance"' in _page(port), timeout=5)
    p.ok("maintenance", "off", "--env", "staging")
    assert p.get("/")[0] == 200
    p.ok("maintenance", "on", "--env", "staging", "--allow", "127.0.0.0/8")
    assert _get(p.port, "/")[0] == 200, "a peer inside --allow passes"
    p.ok("maintenance", "off", "--env", "staging")


def test_scheduled_maintenance_shows_at_once_and_switches_the_router(proj: tuple[Project, int]) -> None:
    p, port = proj
    start = datetime.fromtimestamp(time.time() + 3, UTC).isoformat(timespec="seconds")
    doc: Any = p.json("maintenance", "schedule", "--env", "staging", "--at", start, "--for", "2s",
                      "-m", "Database upgrade", "--switch", "--allow", "10.0.0.0/8")
    assert doc["status"] == "scheduled"
    assert wait_for(lambda: "Database upgrade" in _page(port), timeout=3), "on the page before it starts"
    summary: Any = json.loads(_get(port, "/api/v2/summary.json")[2])
    assert summary["scheduled_maintenances"][0]["name"] == "Database upgrade"
    assert wait_for(lambda: _get(p.port, "/")[0] == 503, timeout=10, interval=0.1)
    code, headers, _ = _get(p.port, "/")
    assert code == 503 and 0 < int(headers["retry-after"]) <= 2
    assert wait_for(lambda: _get(p.port, "/")[0] == 200, timeout=10, interval=0.1)
    def notices() -> list[str]:
        return [e["message"] for e in _events(p) if e["kind"] == "notice"]

    assert wait_for(lambda: any("is over: Database upgrade" in n for n in notices()), timeout=5)
    assert any("has started: Database upgrade" in n for n in notices())
    bad = p.cli("maintenance", "schedule", "--env", "staging", "--at", "2026-12-03T02:00", "--for", "2h", "-m", "x")
    assert bad.returncode == 2 and "no UTC offset" in bad.stderr


def _events(p: Project) -> list[dict[str, Any]]:
    events: Any = p.json("events", "--env", "staging")
    return events if isinstance(events, list) else events["events"]


def test_report_html_and_json(proj: tuple[Project, int]) -> None:
    p, _ = proj
    for _ in range(20):
        p.get("/")
    # Its own incident: the test must not lean on one an earlier test in the module opened.
    iid = p.ok("incident", "open", "--component", "API", "--impact", "minor", "-m", "Report check").stdout.strip()
    out = p.dir.parent / "report.html"  # opened in Chromium below
    rep: Any = p.json("report", "--env", "staging", "--period", "24h", "--html", str(out))
    assert rep["deploys"]["count"] >= 1 and rep["deploys"]["list"][0]["status"] == "succeeded"
    assert rep["deploys"]["list"][0]["performer"]
    assert rep["availability"]["slo"] == 0.999 and len(rep["trend"]) == 7
    assert any(i["title"] == "Report check" for i in rep["incidents"])
    p.ok("incident", "resolve", iid, "-m", "Checked")  # the module's later tests see no open incident of it
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "src=" not in html and "<script" not in html
    bad = p.cli("report", "--env", "staging", "--period", "3d")
    assert bad.returncode == 2 and "--period" in bad.stderr


ARTIFACTS = Path(os.environ.get("SHIPYARD_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")


def test_page_and_report_render_in_chromium(proj: tuple[Project, int], chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    p, port = proj
    iid = p.ok("incident", "open", "--component", "Website", "--impact", "minor", "-m",
               "Slow readings for some users").stdout.strip()
    p.ok("incident", "update", iid, "--status", "monitoring", "-m", "A fix is out; we are watching")
    tomorrow = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat(timespec="minutes")
    p.ok("maintenance", "schedule", "--env", "staging", "--at", tomorrow, "--for", "2h", "-m", "Database upgrade")
    assert wait_for(lambda: "we are watching" in _page(port) and _page(port).count("Database upgrade") >= 1, timeout=5)
    report = p.dir.parent / "report.html"
    assert report.exists(), "written by test_report_html_and_json"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 960, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            assert page.locator(".comp").count() == 2
            assert page.locator("#status").inner_text() == "Minor Service Outage"
            assert page.locator(f"#incident-{iid}").get_attribute("data-status") == "monitoring"
            page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
            page.goto(report.as_uri())
            assert page.locator("svg").count() >= 1 and "Availability" in page.locator(".kpis").inner_text()
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "status-page.png").stat().st_size > 10_000


def test_no_secret_value_in_any_page_feed_or_report(proj: tuple[Project, int], tmp_path: Path) -> None:
    p, port = proj
    texts = [_get(port, path)[2] for path in ("/", "/api/v2/summary.json", "/api/v2/status.json", "/history.atom")]
    out = tmp_path / "r.html"
    texts.append(p.ok("report", "--env", "staging", "--period", "7d", "--json", "--html", str(out)).stdout)
    texts.append(out.read_text())
    files = list((p.dir / ".shipyard" / "statuspage").rglob("*"))
    texts += [f.read_text() for f in files if f.is_file()]
    assert len(texts) >= 10
    assert not [t for t in texts if SECRET in t]
    assert _get(port, "/.shipyard/state.db")[0] == 404 and _get(port, "/../state.db")[0] == 404


def _post(port: int, path: str, form: dict[str, str], cookie: str = "") -> tuple[int, dict[str, str], str]:
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=urlencode(form), headers={
            "Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_dashboard_login_rollback_logout_and_refusals(proj: tuple[Project, int], chromium: str) -> None:
    import re
    from urllib.parse import urlsplit

    from playwright.sync_api import sync_playwright

    p, _ = proj
    p.commit("v2")
    p.ok("deploy", "--env", "staging", timeout=120)
    status: Any = p.json("status", "--env", "staging")
    serving, previous = status["release"], status["previous_release"]
    link = p.json("dashboard")["login_link"]  # type: ignore[index]
    dash_port = urlsplit(link).port
    assert dash_port
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(link)
            assert urlsplit(page.url).path == "/"
            cookie = next(c for c in page.context.cookies() if c["name"] == "shipyard_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            env = page.locator('.env[data-env="staging"]')
            assert env.get_attribute("data-release") == serving
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            page.locator('button.rollback[data-env="staging"]').click()
            assert "rollback of staging" in page.locator("#flash").inner_text()
            assert wait_for(lambda: p.json("status", "--env", "staging")["release"] == previous, timeout=60)  # type: ignore[index]
            page.goto(f"http://127.0.0.1:{dash_port}/")
            assert page.locator('.env[data-env="staging"]').get_attribute("data-release") == previous
            page.locator("#logout").click()
            assert urlsplit(page.url).path == "/login"
            page.goto(f"http://127.0.0.1:{dash_port}/")
            assert urlsplit(page.url).path == "/login", "logged out: the session is gone"
        finally:
            browser.close()
    assert _get(dash_port, urlsplit(link).path + "?" + urlsplit(link).query)[0] == 403, "a login link works once"
    # A viewer sees the overview but its rollback is refused; no action passes without the CSRF token.
    viewer = p.ok("token", "create", "watcher", "--role", "viewer").stdout.strip().splitlines()[-1]
    code, headers, _ = _post(dash_port, "/login", {"token": viewer})
    assert code == 303 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    session = headers["set-cookie"].split(";")[0]
    code, _, html = _get(dash_port, "/", {"Cookie": session})
    assert code == 200 and 'data-env="staging"' in html and viewer not in html and SECRET not in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    code, _, said = _post(dash_port, "/rollback", {"env": "staging", "csrf": csrf.group(1)}, session)
    assert code == 403 and "role viewer" in said and "may not roll back" in said
    code, _, said = _post(dash_port, "/rollback", {"env": "staging"}, session)
    assert code == 403 and "CSRF" in said, "no CSRF token"
    assert _post(dash_port, "/login", {"token": "wrong"})[0] == 403


def test_the_page_keeps_serving_while_the_control_plane_is_sigkilled(proj: tuple[Project, int]) -> None:
    p, port = proj
    before = _page(port)
    pid = p.control_pid()
    assert pid and before
    status_pid = json.loads((p.dir / ".shipyard" / "run" / "statuspage.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not _alive(pid), timeout=10)
    for _ in range(10):
        assert _page(port) == before, "the last page, unchanged"
        time.sleep(0.05)
    assert json.loads(_get(port, "/api/v2/summary.json")[2])["page"]["name"] == "Svc - service status"
    assert _alive(status_pid)
    # What the next `shipyard up` does first: it finds the running status page and adopts it (no new process).
    import asyncio

    from shipyard.control.paths import Paths
    from shipyard.control.statuspage.process import StatusPageProcess
    from shipyard.primitives.clock import SystemClock

    assert asyncio.run(StatusPageProcess(Paths(p.dir), SystemClock()).ensure(f"127.0.0.1:{port}")) == port
    assert json.loads((p.dir / ".shipyard" / "run" / "statuspage.json").read_text())["pid"] == status_pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"
