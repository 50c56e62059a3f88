"""The evaluator's rate windows over the router's per-second traffic (``LiveTraffic``), on a test clock:
a fault is pending within seconds of its start (not at the next 10 s point), ``for`` counts from the
first evaluation that saw it, an explicit ``[1m]`` window smooths, and a restart neither loses nor
repeats the firing state."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shipyard.control.alerts import Evaluator
from shipyard.control.collector import LiveTraffic
from shipyard.primitives.clock import ManualClock

from .synthetic import SyntheticRouter
from .test_history_day import SPEC, make

RULES = """
[metrics]
default_alerts = false

[[alerts]]
name = "Fast"
expr = "error_rate > 5%"
for = "30s"

[[alerts]]
name = "Smooth"
expr = "error_rate[1m] > 5%"
for = "30s"
"""


def run(clock: ManualClock, rec, ev: Evaluator, seconds: int) -> list[tuple[float, str, str]]:  # type: ignore[no-untyped-def]
    """The daemon's cadence: a recorder tick every 10 s, a live pull and an evaluation every second."""
    seen: list[tuple[float, str, str]] = []

    async def go() -> None:
        for _ in range(seconds):
            clock.advance(1)
            t = int(clock.time())
            if t % 10 == 0:
                await rec.tick()
            for rule, _state, change in await ev.once(reread=t % 5 == 0):
                seen.append((clock.time(), rule.name, change))

    asyncio.run(go())
    return seen


def evaluator(store, clock: ManualClock, watch, router: SyntheticRouter) -> Evaluator:  # type: ignore[no-untyped-def]
    return Evaluator(store=store, clock=clock, specs=watch, live=LiveTraffic(router, clock))


def test_fault_seen_within_seconds_and_for_counts_from_there(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES)
    clock.advance(3.05)  # evaluations just after each second, as the daemon's
    ev = evaluator(store, clock, watch, router)
    assert run(clock, rec, ev, 120) == []  # 1 % errors
    router.error_share = 0.2
    fault = clock.time()
    seen = run(clock, rec, ev, 90)
    at = {(n, c): t for t, n, c in seen}
    assert [(n, c) for _, n, c in seen if n == "Fast"] == [("Fast", "pending"), ("Fast", "firing")], seen
    # 20 % errors (over 1 %) cross 5 % after 3 s of the 10 s window.
    assert at["Fast", "pending"] - fault <= 4
    assert at["Fast", "firing"] - at["Fast", "pending"] == 30  # for, from the first evaluation that saw it
    state = next(v.state for v in ev.view("prod") if v.rule.name == "Fast")
    assert state.active_since == at["Fast", "pending"] and state.fired_at == at["Fast", "firing"]
    # The 1-minute window needs 13 s of the fault in it (over the 1 % before it).
    assert 12 <= at["Smooth", "pending"] - fault <= 16

    # A restart: new evaluator, new live buffer (filled from the router's last minute) — no second firing.
    ev2 = evaluator(store, clock, watch, router)
    assert run(clock, rec, ev2, 20) == []
    assert next(v for v in ev2.view("prod") if v.rule.name == "Fast").state.state == "firing"

    router.error_share = 0.0
    healed = clock.time()
    seen = run(clock, rec, ev2, 90)
    resolved = {n: t - healed for t, n, c in seen if c == "resolved"}
    assert resolved["Fast"] <= 10 and 40 <= resolved["Smooth"] <= 62, seen
    store.close()


def test_a_restart_after_resolving_does_not_fire_again(tmp_path: Path) -> None:
    """The restarted evaluator's first evaluation reads the router's last minute, not the older history
    (whose newest point still held the traffic the live window had already left)."""
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + "[metrics]\ndefault_alerts = false\n[[alerts]]\n"
                                            'name = "Traffic"\nexpr = "rps > 0"\n')
    router.keep = True
    clock.advance(3.05)
    ev = evaluator(store, clock, watch, router)
    assert [c for _, _, c in run(clock, rec, ev, 30)] == ["firing"]
    router.rps = 0
    assert [c for _, _, c in run(clock, rec, ev, 15)] == ["resolved"]
    for _ in range(3):  # restarts at several points of the 10 s history step
        ev = evaluator(store, clock, watch, router)
        assert run(clock, rec, ev, 4) == []
    store.close()


def test_stale_live_traffic_has_no_value(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    live = LiveTraffic(router, clock)
    asyncio.run(live.pull(["prod"]))
    assert live.window("prod", clock.time())
    clock.advance(31)
    assert live.window("prod", clock.time()) == []  # not pulled for 30 s: no value, rules not true
    store.close()
