"""The dashboard end to end: the real CLI, control plane, router and instances on loopback, headless Debian
Chromium driven by Playwright. Log in, watch a real canary step forward live (server-sent events), press
rollback and see it happen, the charts, history and alerts pages; canary and approval actions with the
roles and the CSRF token enforced; no secret value in any page or in the event stream."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, free_port, make_project, wait_for  # noqa: E402
from traffic import Traffic  # noqa: E402

SECRET = "dash-S3cret-Value-42a1"  # must appear in no page and no event stream
ARTIFACTS = Path(os.environ.get("SHIPYARD_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CANARY = 'strategy = "canary"\ncanary = {{ steps = [20, 50, 100], step_duration = "{step}", min_samples = 20, ' \
         'inconclusive_limit = "30s" }}\n'


def _prod(port: int) -> str:
    return (f"\n[environments.prod]\nport = {port}\nreplicas = 1\nstrategy = \"blue-green\"\n"
            "[environments.prod.approval]\nrequired = 1\nprevent_self_review = false\n")


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, int]]:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: run make setup (scripts/setup-system.sh)")
    p = make_project(tmp_path_factory.mktemp("dash"))
    prod = free_port()
    p.write_spec(replicas=2, extra=CANARY.format(step="3s") + _prod(prod))
    p.commit("v1")
    try:
        p.ok("up", "--detach", timeout=90)
        first: Any = p.json("deploy", "--env", "staging", timeout=120)
        assert first["outcome"] == "succeeded", first
        proc = p.cli("secrets", "set", "--env", "staging", "API_KEY=-", input=SECRET)
        assert proc.returncode == 0, proc.stderr
        yield p, prod
    finally:
        if p.control_pid():
            p.cli("down", timeout=120)
        p.kill_everything()


def _request(port: int, method: str, path: str, form: dict[str, str] | None = None, cookie: str = ""
             ) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})}
        conn.request(method, path, body=urlencode(form) if form is not None else None, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


def _login(p: Project, token: str | None = None) -> tuple[int, str]:
    """(dashboard port, session cookie) for the project's own token, or for ``token``."""
    link = str(p.json("dashboard")["login_link"])  # type: ignore[index]
    port = urlsplit(link).port
    assert port
    if token is None:
        code, headers, _ = _request(port, "GET", urlsplit(link).path + "?" + urlsplit(link).query)
    else:
        code, headers, _ = _request(port, "POST", "/login", {"token": token})
    assert code == 303, code
    return port, headers["set-cookie"].split(";")[0]


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None
    return m.group(1)


def _status(p: Project, env: str = "staging") -> Any:
    return p.json("status", "--env", env)


def _deploy_async(p: Project, env: str = "staging") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", env, "--json"], cwd=p.dir,
                            env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_watch_a_canary_live_then_roll_back_in_the_browser(proj: tuple[Project, int]) -> None:
    from playwright.sync_api import expect, sync_playwright

    p, _ = proj
    v1 = _status(p)["release"]
    p.commit("v2")
    link = str(p.json("dashboard")["login_link"])  # type: ignore[index]
    base = f"http://127.0.0.1:{urlsplit(link).port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw, Traffic(p.port, rate=80, connections=4) as traffic:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(link)
            page.goto(f"{base}/live?env=staging")
            live = page.locator("#live")
            expect(live).to_have_attribute("data-state", "live", timeout=10_000)  # the stream is open
            assert live.get_attribute("data-release") == v1
            deploy = _deploy_async(p)
            # The page is never reloaded: every change below arrives over the event stream.
            expect(live).to_have_attribute("data-weight", "20", timeout=60_000)
            expect(page.locator("#canary")).to_be_visible()
            assert "of 6" in page.locator("#step").inner_text()  # 20, bake, 50, bake, 100, promote
            expect(page.locator("#verdict tbody tr[data-check=errors]")).to_be_visible(timeout=15_000)
            assert page.locator("#next").inner_text() != "-"
            assert page.locator("#canary-actions button.canary-pause").is_visible()
            assert not page.locator("#canary-actions button.canary-resume").is_visible(), "not paused: no resume"
            page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
            expect(live).to_have_attribute("data-weight", "50", timeout=60_000)
            out, err = deploy.communicate(timeout=120)
            res = json.loads(out)
            assert res["outcome"] == "succeeded", (res, err)
            v2 = res["release"]
            expect(live).to_have_attribute("data-release", v2, timeout=10_000)
            expect(page.locator("#canary")).to_be_hidden()
            expect(live).to_have_attribute("data-last-outcome", "succeeded")
            assert page.locator("#events tr").count() >= 1, "the environment's recent events"
            # Roll back from the live view and watch it happen there.
            page.locator("#live button.rollback").click()
            expect(page.locator("#flash")).to_contain_text(f"rollback of staging to {v1} started")
            expect(page.locator("#live")).to_have_attribute("data-release", v1, timeout=60_000)
            assert wait_for(lambda: _status(p)["release"] == v1, timeout=30)
            for path, shot in (("/charts?env=staging&since=1h", "dashboard-charts.png"),
                               ("/alerts", "dashboard-alerts.png")):
                page.goto(base + path)
                if "charts" in path:
                    expect(page.locator("body")).to_have_attribute("data-charts", "drawn", timeout=10_000)
                    assert page.locator("#chart-latency canvas").count() >= 1
                    assert int(page.locator("#chart-rps").get_attribute("data-series") or 0) >= 3, "total + 2 releases"
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
            page.goto(base + "/history?env=staging")
            first = page.locator("tr.deployment").first
            assert first.get_attribute("data-outcome") == "succeeded" and "rollback" in first.inner_text()
            assert "local" in first.locator(".performer").inner_text()
            page.locator("#logout").click()
            assert urlsplit(page.url).path == "/login"
            page.goto(f"{base}/live?env=staging")
            assert urlsplit(page.url).path == "/login", "logged out: the session is gone"
        finally:
            browser.close()
    c = traffic.counts
    assert c.failed == 0, f"{c.summary()} {dict(c.errors)}"
    assert (ARTIFACTS / "dashboard-live.png").stat().st_size > 20_000


def test_canary_actions_pause_resume_abort_and_the_roles(proj: tuple[Project, int]) -> None:
    p, _ = proj
    spec = p.dir / "shipyard.toml"
    spec.write_text(spec.read_text().replace('step_duration = "3s"', 'step_duration = "120s"'))
    p.commit("v3")
    port, admin = _login(p)
    viewer_token = p.ok("token", "create", "dash-viewer", "--role", "viewer").stdout.strip().splitlines()[-1]
    _, viewer = _login(p, viewer_token)
    deploy = _deploy_async(p)
    try:
        assert wait_for(lambda: (_status(p).get("canary") or {}).get("weight") == 20, timeout=60)
        code, _, html = _request(port, "GET", "/live?env=staging", cookie=admin)
        assert code == 200 and 'class="canary-pause"' in html
        csrf = _csrf(html)
        act = {"env": "staging", "csrf": csrf, "back": "/live?env=staging"}
        code, headers, _ = _request(port, "POST", "/action", {**act, "action": "pause"}, admin)
        assert code == 303 and "paused" in headers["location"]
        assert _status(p)["canary"]["paused"] is True
        # A viewer sees the page; every action of its is refused, as the API refuses it.
        code, _, vhtml = _request(port, "GET", "/live?env=staging", cookie=viewer)
        assert code == 200 and "canary-pause" not in vhtml and "button class=\"rollback\"" not in vhtml, \
            "a viewer is shown no action"
        vact = {**act, "csrf": _csrf(vhtml)}
        for action in ("resume", "abort", "promote", "rollback"):
            code, _, said = _request(port, "POST", "/action", {**vact, "action": action}, viewer)
            assert code == 403 and "role viewer" in said, (action, code, said)
        code, _, said = _request(port, "POST", "/action", {**act, "action": "resume", "csrf": ""}, admin)
        assert code == 403 and "CSRF" in said
        assert _status(p)["canary"]["paused"] is True, "nothing refused took effect"
        code, headers, _ = _request(port, "POST", "/action", {**act, "action": "resume"}, admin)
        assert code == 303 and _status(p)["canary"]["paused"] is False
        code, headers, _ = _request(port, "POST", "/action", {**act, "action": "abort"}, admin)
        assert code == 303 and "aborting" in headers["location"]
        out, err = deploy.communicate(timeout=60)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    res = json.loads(out)
    assert res["outcome"] != "succeeded" and _status(p)["canary"] is None, (res, err)
    # A refusal other than a role's comes back as the page's message; the way back stays on this site.
    code, headers, _ = _request(port, "POST", "/action", {**act, "action": "resume",
                                                          "back": "/live\r\nSet-Cookie: evil=1"}, admin)
    assert code == 303 and headers["location"].startswith("/?msg=") and "no%20canary" in headers["location"]
    assert "set-cookie" not in headers
    audit: Any = p.json("audit", "--env", "staging")
    actions = [a.get("action") for a in (audit if isinstance(audit, list) else audit.get("entries", []))]
    assert {"canary_pause", "canary_resume", "canary_abort"} <= set(actions), actions
    # The refusals were not recorded as actions: one pause, one resume, one abort.
    assert actions.count("canary_resume") == 1


def test_approve_and_reject_a_waiting_deployment(proj: tuple[Project, int]) -> None:
    p, prod_port = proj
    port, admin = _login(p)
    waiting: Any = p.json("deploy", "--env", "prod", "--detach")
    number = waiting["deployment"]
    code, _, html = _request(port, "GET", "/live?env=prod", cookie=admin)
    assert code == 200 and f'"deployment":{number}' in html, "the waiting deployment is in the live document"
    csrf = _csrf(html)
    code, headers, _ = _request(port, "POST", "/action", {"action": "reject", "deployment": str(number),
                                                            "message": "not today", "csrf": csrf, "back": "/live?env=prod"},
                                admin)
    assert code == 303 and "rejected" in headers["location"]
    again: Any = p.json("deploy", "--env", "prod", "--detach")
    code, headers, _ = _request(port, "POST", "/action", {"action": "approve", "deployment": str(again["deployment"]),
                                                            "csrf": csrf, "back": "/live?env=prod"}, admin)
    assert code == 303 and "approved" in headers["location"]
    assert wait_for(lambda: _status(p, "prod")["release"] is not None, timeout=90)
    hist: Any = p.json("history", "--env", "prod")
    outcomes = {h["deployment"]: h["outcome"] for h in hist}
    assert outcomes[number] == "rejected"


def _sse(port: int, cookie: str, env: str, seconds: float) -> str:
    """What the event stream sends in ``seconds``."""
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds + 5)
    s.sendall(f"GET /events?env={env} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    s.settimeout(0.5)
    got, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    s.close()
    return got.decode(errors="replace")


def test_no_secret_or_token_in_any_page_or_event_stream(proj: tuple[Project, int]) -> None:
    p, _ = proj
    token = p.ok("token", "create", "dash-admin", "--role", "admin").stdout.strip().splitlines()[-1]
    port, cookie = _login(p, token)
    texts = []
    for path in ("/", "/live?env=staging", "/live?env=prod", "/history?env=staging", "/history?env=prod",
                 "/charts?env=staging", "/charts?env=staging&since=30d", "/backups?env=staging", "/alerts",
                 "/alerts?env=staging"):
        code, _, html = _request(port, "GET", path, cookie=cookie)
        assert code == 200, (path, code, html[:200])
        texts.append(html)
    history = texts[3]
    aborted = re.search(r'<tr class="deployment" data-id="\d+" data-outcome="rolled_back">.*?</tr>', history)
    assert aborted is not None and "aborted by the operator" in aborted.group(0), "the abort, with its reason"
    assert "dash-viewer" not in history and "local" in aborted.group(0), "its performer"
    stream = _sse(port, cookie, "staging", 2.5)
    assert stream.startswith("HTTP/1.1 200") and "event: live" in stream and "text/event-stream" in stream
    texts.append(stream)
    local_token = (p.dir / ".shipyard" / "token").read_text().strip() if (p.dir / ".shipyard" / "token").exists() else ""
    for t in texts:
        assert SECRET not in t and token not in t
        assert not local_token or local_token not in t
    # The history after the abort, with its reason, for the docs.
    from playwright.sync_api import sync_playwright

    link = str(p.json("dashboard")["login_link"])  # type: ignore[index]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 500})
            page.goto(link)
            page.goto(f"http://127.0.0.1:{port}/history?env=staging")
            assert page.locator('tr.deployment[data-outcome="rolled_back"]').count() >= 1
            page.screenshot(path=str(ARTIFACTS / "dashboard-history.png"), full_page=True)
        finally:
            browser.close()
    # Without a session: no page, no stream, no static file beyond the public scripts.
    assert _request(port, "GET", "/events?env=staging")[0] == 303
    assert _request(port, "GET", "/history?env=staging")[0] == 303
    assert _request(port, "GET", "/static/uplot.LICENSE")[2].startswith("The MIT License")
    assert _request(port, "GET", "/static/../server.py")[0] == 404
