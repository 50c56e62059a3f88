"""Coordinated omission: a server that stalls 1 s every 10 s must show in verify's P99.

The same run is measured two ways: from each request's scheduled time (verify's open model) and from the
time it was written to a connection (what a closed-loop tool such as wrk reports with a fixed pool of
connections, since it only sends when a connection is free). During the stall ~100 requests queue up
behind the 4 busy connections; only the open-model measurement counts their wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from shipyard.engine.verify.runner import run_verify
from shipyard.primitives.spec.verify import VerifySpec


def _spec(**kw: Any) -> VerifySpec:
    return VerifySpec.model_validate(kw)


def test_a_stall_shows_in_p99_only_when_measured_from_the_schedule(start_server: Callable[..., str]) -> None:
    url = start_server("--stall-every", "10", "--stall-for", "1", "--stall-at", "2")
    spec = _spec(rate=100, duration=11, max_vus=4, thresholds={"http_req_duration": "p(99)<500"})
    result = asyncio.run(run_verify(url, spec))
    assert result.service is not None
    assert result.requests == 1100 and result.failed == 0
    assert result.latency.p99 >= 500, result.to_json()["latency_ms"]
    assert result.latency.max >= 900
    assert result.service.p99 < 500, result.to_json()["service_time_ms"]  # the closed-loop view hides it
    assert result.service.max >= 500  # ...though its few stalled requests were there
    assert not result.go  # and the threshold catches it
