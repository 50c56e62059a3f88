"""The open model's arithmetic: when each request is due, with and without a ramp."""

from __future__ import annotations

import pytest

from shipyard.engine.verify.schedule import Schedule


def test_constant_rate_is_evenly_spaced() -> None:
    s = Schedule(rate=1000, duration=60)
    assert s.total == 60000
    assert s.time_of(0) == 0.0
    assert s.time_of(1) == pytest.approx(0.001)
    assert s.time_of(59999) == pytest.approx(59.999)
    assert s.due_by(0.0) == 1
    assert s.due_by(0.0105) == 11
    assert s.due_by(1e9) == 60000
    assert s.due_by(-1) == 0


def test_fractional_rate() -> None:
    s = Schedule(rate=2.5, duration=2)
    assert s.total == 5
    assert [s.time_of(i) for i in range(5)] == pytest.approx([0, 0.4, 0.8, 1.2, 1.6])


def test_ramp_rises_linearly_then_holds() -> None:
    s = Schedule(rate=100, duration=10, ramp=4)
    assert s.ramp_requests == 200  # area under the ramp: 100/s × 4 s / 2
    assert s.total == 1200
    assert s.time_of(200) == pytest.approx(4.0)
    assert s.time_of(300) == pytest.approx(5.0)
    # rate(t) = 25·t during the ramp, so 50 requests are due in its first 2 s.
    assert s.due_by(2.0) == 51
    assert s.time_of(50) == pytest.approx(2.0)
    for i in range(0, 1200, 37):  # due_by and time_of agree everywhere
        assert s.due_by(s.time_of(i)) == i + 1
