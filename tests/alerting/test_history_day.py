"""24 hours of synthetic traffic through a test clock: recorder → store → `shipyard metrics`' route.

The recorder runs its real tick every 10 (test-clock) seconds against synthetic router replies and a real
state database; the route's `--since 24h --step 1m` answer must agree with the per-second data it came
from (requests and errors exactly, P50/P95/P99 as the quantile of the minute's merged histogram), and
the compacted minute points must say the same.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shipyard.control.alerts import Evaluator
from shipyard.control.metrics_api import MetricsContext, metrics_routes
from shipyard.control.metrics_recorder import Recorder
from shipyard.control.specwatch import SpecWatch
from shipyard.engine.alerting.history import InstanceReading
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.metrics import merge_counts, quantile
from shipyard.primitives.spec import load_spec
from shipyard.primitives.store import Store, open_store

from .synthetic import SyntheticRouter

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"
[environments.prod]
port = 8300
"""
DAY = 86_400
T0 = 1_700_006_400  # a multiple of 86 400: minutes and 10-second buckets line up with the day


def make(tmp_path: Path, db_url: str | None = None) -> tuple[Store, ManualClock, Recorder, SyntheticRouter, SpecWatch]:
    (tmp_path / "shipyard.toml").write_text(SPEC)
    store = open_store(db_url, tmp_path / ".shipyard")
    store.upsert_environment("prod", current_release="r1", updated_at=float(T0))
    clock = ManualClock(float(T0))
    router = SyntheticRouter(clock)
    watch = SpecWatch(tmp_path)

    def readings(env: str) -> list[InstanceReading]:
        return [InstanceReading(i, r, True, cpu=0.2, rss=60 * 2**20, memory_limit=2**33) for i, r in router.instances.items()]

    rec = Recorder(link=router, store=store, clock=clock, specs=watch, readings=readings)
    return store, clock, rec, router, watch


async def run_for(clock: ManualClock, rec: Recorder, seconds: int) -> None:
    for _ in range(seconds // 10):
        clock.advance(10)
        await rec.tick()


def expected_minute(router: SyntheticRouter, t: int) -> tuple[int, int, dict[int, int]]:
    seconds = [router.second(i, s) for i in router.instances for s in range(t, t + 60)]
    req = sum(sum(s["status"]) for s in seconds)
    err = sum(s["status"][5] for s in seconds)
    hist = merge_counts({int(b): int(n) for b, n in s["histogram"]} for s in seconds)
    return req, err, hist


@pytest.mark.slow
def test_a_day_of_history_agrees_with_the_raw_data(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    clock.advance(900)  # the router holds 15 minutes; the first tick records them all
    asyncio.run(run_for(clock, rec, DAY))
    assert rec.ticks == DAY // 10
    ctx = MetricsContext(store, clock, lambda: load_spec(tmp_path / "shipyard.toml"),
                         Evaluator(store=store, clock=clock, specs=watch))
    route = metrics_routes(ctx)[("GET", "/v1/metrics")]
    doc = asyncio.run(route({}, {"env": "prod", "since": "24h", "step": "1m"}, None))
    assert doc["resolution"] == "raw" and doc["step"] == 60
    total = doc["total"]
    assert len(total) >= 1439
    minutes = {r["t"]: r for r in store.read_points("minute", "prod", 0)}
    for p in total[:: 37] + total[-3:]:  # every 37th minute (all of them take ~1 min to recompute) and the newest
        req, err, hist = expected_minute(router, p["t"])
        assert (p["requests"], p["errors"]) == (req, err), p["t"]
        for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            assert p[key] == quantile(hist, q)
        assert p["up"] == 2 and p["cpu"] == 0.2 and p["rss"] == 2 * 60 * 2**20
        m = minutes[p["t"]]
        assert (m["requests"], m["errors"], m["p95"]) == (req, err, p["p95"])
    # Every second of the day is counted once: the day's total is the generated total.
    day = [p for p in total if p["t"] >= T0 + 900]
    generated = sum(sum(router.second(i, s)["status"]) for i in router.instances
                    for s in range(day[0]["t"], day[-1]["t"] + 60))
    assert sum(p["requests"] for p in day) == generated
    # Retention: raw points older than 24 h are pruned, minute points kept.
    clock.advance(3 * 3600)
    asyncio.run(run_for(clock, rec, 610))
    oldest_raw = store.read_points("raw", "prod", 0)[0]["t"]
    assert oldest_raw >= clock.time() - DAY - 10
    assert store.read_points("minute", "prod", 0)[0]["t"] < oldest_raw
    store.close()


def test_recorder_catches_up_and_never_counts_a_second_twice(tmp_path: Path) -> None:
    store, clock, rec, router, _ = make(tmp_path)
    asyncio.run(run_for(clock, rec, 600))
    # A control-plane restart: a new recorder on the same store resumes at its cursor, after a gap.
    clock.advance(300)
    rec2 = Recorder(link=router, store=store, clock=clock, specs=rec.specs, readings=rec.readings)
    asyncio.run(run_for(clock, rec2, 60))
    rows = store.read_points("raw", "prod", 0)
    ts = sorted({r["t"] for r in rows})
    assert ts == list(range(ts[0], ts[-1] + 10, 10)), "no gap, no overlap"
    for r in rows[:: 11]:
        secs = [router.second(r_id, s) for r_id in router.instances for s in range(r["t"], r["t"] + 10)]
        assert r["requests"] == sum(sum(s["status"]) for s in secs)
    store.close()
