from __future__ import annotations

import json
import math
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shipyard.engine.analysis.conditions import Condition
from shipyard.engine.analysis.prometheus import (
    PrometheusError,
    parse_query_response,
    query,
    read_condition,
)
from shipyard.errors import ShipyardError

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "errors", "job": "api"}, "value": [1700000000.123, "0.25"]},
            {"metric": {"job": "worker"}, "value": [1700000000.123, "0.75"]},
            {"metric": {"job": "idle"}, "value": [1700000000.123, "NaN"]},
        ],
    },
}


def test_parse_vector() -> None:
    r = parse_query_response(json.dumps(VECTOR))
    assert r.result_type == "vector" and len(r.series) == 3
    assert r.series[0].metric == {"__name__": "errors", "job": "api"}
    assert r.series[0].t == 1700000000.123 and r.series[0].value == 0.25
    assert math.isnan(r.series[2].value)
    assert r.value("above") == 0.75 and r.value("below") == 0.25  # the worst series, NaN ignored


def test_parse_scalar_empty_and_inf() -> None:
    r = parse_query_response({"status": "success", "data": {"resultType": "scalar", "result": [1.5, "+Inf"]}})
    assert r.result_type == "scalar" and r.value() == math.inf
    empty = parse_query_response(b'{"status":"success","data":{"resultType":"vector","result":[]}}')
    assert empty.value() is None


@pytest.mark.parametrize(("body", "needle"), [
    ('{"status":"error","errorType":"bad_data","error":"parse error at char 5"}',
     "rejected the query (bad_data): parse error at char 5"),
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"status":"success"}', "no 'data'"),
    ('{"status":"success","data":{"resultType":"matrix","result":[]}}', "matrix result"),
    ('{"status":"success","data":{"resultType":"vector","result":{}}}', "not a list"),
    ('{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}', "not [time, value]"),
    ('{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}', "not a number"),
    ('{"status":"success","data":{"resultType":"scalar","result":"3"}}', "not [time, value]"),
])
def test_parse_errors(body: str, needle: str) -> None:
    with pytest.raises(PrometheusError) as exc:
        parse_query_response(body)
    assert needle in str(exc.value)
    assert isinstance(exc.value, ShipyardError)


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, list[str]]] = []
    release = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query)
        type(self).seen.append(params)
        q = params.get("query", [""])[0]
        if url.path != "/api/v1/query":
            self._send(404, b"not found", "text/plain")
        elif q == "slow":
            type(self).release.wait(10)
            self._send(200, json.dumps(VECTOR).encode())
        elif q == "bad(":
            self._send(400, b'{"status":"error","errorType":"bad_data","error":"unexpected end of input"}')
        elif q == "broken":
            self._send(502, b"<html>bad gateway</html>", "text/html")
        else:
            self._send(200, json.dumps(VECTOR).encode())

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def prom() -> Iterator[str]:
    _Handler.seen = []
    _Handler.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Handler.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_client_queries_instant_api(prom: str) -> None:
    r = query(prom + "/", "sum(rate(errors[1m]))", at=1700000000.5, timeout=5)
    assert r.value() == 0.75
    params = _Handler.seen[-1]
    assert params["query"] == ["sum(rate(errors[1m]))"]
    assert params["time"] == ["1700000000.500"]
    assert params["timeout"] == ["5s"]


def test_client_translates_rejected_query(prom: str) -> None:
    with pytest.raises(PrometheusError, match=r"rejected the query \(bad_data\): unexpected end of input"):
        query(prom, "bad(")


def test_client_translates_http_error(prom: str) -> None:
    with pytest.raises(PrometheusError, match="HTTP 502"):
        query(prom, "broken")


def test_client_timeout(prom: str) -> None:
    with pytest.raises(PrometheusError, match="did not answer within 0.3s"):
        query(prom, "slow", timeout=0.3)


def test_client_unreachable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    with pytest.raises(PrometheusError, match="cannot reach Prometheus"):
        query(f"http://127.0.0.1:{port}", "up", timeout=5)


def test_read_condition(prom: str) -> None:
    cond = Condition("prometheus", 0.5, "above", 60.0, prom, "errors")
    reading = read_condition(cond, 1700000000.0)
    assert reading.t == 1700000000.0 and reading.value == 0.75
    below = Condition("prometheus", 0.5, "below", 60.0, prom, "errors")
    assert read_condition(below, 1.0).value == 0.25
    with pytest.raises(ValueError):
        read_condition(Condition("cpu", 0.9, "above", 60.0), 1.0)
