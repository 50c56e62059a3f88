"""The status page's automatic signals, against their real parts: synthetic HTTP checks against a real HTTP
server on loopback (status and response-time conditions, kept per minute), and a critical alert fired by the
real evaluator over recorded history (tests/alerting's synthetic router traffic on a test clock) — each moves
its component to degraded_performance by itself, and back; neither writes incident text. summary.json's
``page.url`` comes from ``[status_page] url`` or the listen address."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import pytest

from alerting.test_evaluator import drive
from alerting.test_history_day import SPEC, make
from shipyard.control.alerts import Evaluator
from shipyard.control.statuspage.checks import CheckRunner
from shipyard.control.statuspage.feeds import atom, page_url
from shipyard.control.statuspage.model import PageInputs, build_page
from shipyard.control.statuspage.writer import StatusWriter
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.faces import StatusPageSpec
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.store import open_store


class Site:
    """A real HTTP server whose answer (status, delay) the test sets."""

    def __init__(self) -> None:
        self.status, self.delay, self.hits = 200, 0.0, 0


@pytest.fixture
def site() -> Iterator[tuple[Site, int]]:
    s = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            s.hits += 1
            time.sleep(s.delay)
            self.send_response(s.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield s, server.server_address[1]
    server.shutdown()
    server.server_close()


def _summary(out: Path) -> Any:
    return json.loads((out / "api" / "v2" / "summary.json").read_text())


def _states(out: Path) -> dict[str, str]:
    return {c["name"]: c["status"] for c in _summary(out)["components"]}


def test_a_failing_check_degrades_its_component_and_a_passing_one_restores_it(
        tmp_path: Path, site: tuple[Site, int]) -> None:
    s, port = site
    spec = parse_spec({
        "app": {"name": "svc", "run": "x", "health": {"path": "/h"}},
        "environments": {"prod": {"port": 8000}},
        "status_page": {"listen": "127.0.0.1:8088", "url": "https://status.tarot.example/", "components": [
            {"name": "API", "env": "prod"},
            {"name": "Website", "check": {"url": f"http://127.0.0.1:{port}/", "interval": "30s", "timeout": "2s",
                                          "conditions": ["status == 200", "response_time < 300ms"]}}]},
    }, tmp_path / "shipyard.toml")
    clock = ManualClock(1_796_120_000.0)
    store = open_store(None, tmp_path / ".shipyard")
    out = tmp_path / "statuspage"
    try:
        checks = CheckRunner(store=store, clock=clock, spec=lambda: spec, on_change=lambda: None)
        writer = StatusWriter(store=store, clock=clock, spec=lambda: spec, out=out,
                              critical_firing=lambda env: False, check_failing=checks.failing)

        def check_then_write(seconds: float = 30) -> dict[str, str]:
            clock.advance(seconds)
            asyncio.run(checks.run_once())
            writer.refresh()
            return _states(out)

        assert check_then_write() == {"API": "operational", "Website": "operational"}
        s.status = 503
        assert check_then_write() == {"API": "operational", "Website": "degraded_performance"}
        assert _summary(out)["status"]["indicator"] == "minor"
        assert check_then_write(5) == {"API": "operational", "Website": "degraded_performance"}
        assert s.hits == 2, "not again before its interval"
        s.status, s.delay = 200, 0.5
        assert check_then_write()["Website"] == "degraded_performance", "too slow: response_time < 300ms fails"
        s.delay = 0.0
        assert check_then_write()["Website"] == "operational"
        doc = _summary(out)
        assert doc["incidents"] == [] and doc["status"]["indicator"] == "none", "no incident written by a check"
        assert doc["page"]["url"] == "https://status.tarot.example"
        # Each result counts in its minute: 4 results over 2 minutes, 2 of them good.
        minutes = store.check_minutes("Website", 0)
        assert sum(n for _, n, _ in minutes) == 4 and sum(ok for _, _, ok in minutes) == 2
        feed = feedparser.parse((out / "history.atom").read_text())
        assert not feed.bozo and feed.feed.link == "https://status.tarot.example/"
    finally:
        store.close()


RULES = """
[[alerts]]
name = "ErrorsCritical"
expr = "error_rate > 20%"
for = "30s"
severity = "critical"

[[alerts]]
name = "ErrorsWarning"
expr = "error_rate > 2%"
for = "30s"
severity = "warning"

[status_page]
listen = "0.0.0.0:8088"
components = [{ name = "API", env = "prod" }]
"""


def test_a_firing_critical_alert_degrades_the_component_a_warning_does_not(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    try:
        (tmp_path / "shipyard.toml").write_text(SPEC + RULES)
        ev = Evaluator(store=store, clock=clock, specs=watch)
        out = tmp_path / "statuspage"
        writer = StatusWriter(store=store, clock=clock, spec=watch.current, out=out,
                              critical_firing=ev.critical_firing, check_failing=lambda name: False)

        def states_after(seconds: int) -> tuple[set[str], str]:
            drive(clock, rec, ev, seconds)
            writer.refresh()
            firing = {v.rule.name for v in ev.view("prod") if v.state.state == "firing"}
            return firing, _states(out)["API"]

        assert states_after(120) == (set(), "operational")
        router.error_share = 0.08
        assert states_after(150) == ({"ErrorsWarning"}, "operational"), "a warning leaves the page alone"
        router.error_share = 0.5
        firing, state = states_after(150)
        assert "ErrorsCritical" in firing and state == "degraded_performance"
        doc = _summary(out)
        assert doc["incidents"] == [] and doc["status"]["indicator"] == "minor"
        assert doc["page"]["url"] == f"http://{socket.gethostname()}:8088", "from the listen address"
        page = (out / "index.html").read_text()
        assert "ErrorsCritical" not in page and "error_rate" not in page, "alert rules are internal"
        router.error_share = 0.0
        assert states_after(300) == (set(), "operational")
    finally:
        store.close()


def test_the_page_url_from_the_setting_or_the_listen_address() -> None:
    def url(**kw: str) -> str:
        return page_url(StatusPageSpec.model_validate(kw), "status-host")

    assert url(listen="127.0.0.1:8088") == "http://127.0.0.1:8088"
    assert url(listen="0.0.0.0:80") == "http://status-host:80"
    assert url(listen="[::1]:8088") == "http://[::1]:8088"
    assert url(listen="0.0.0.0:80", url="https://status.example.com/") == "https://status.example.com"
    spec = StatusPageSpec.model_validate({"url": "https://status.example.com"})
    feed = atom(build_page(PageInputs(spec, 1_796_120_000.0, [], [], [])), page_url(spec, "h"))
    assert 'href="https://status.example.com/history.atom"' in feed
    with pytest.raises(ValueError, match="url"):
        StatusPageSpec.model_validate({"url": "status.example.com"})
