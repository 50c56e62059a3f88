"""Deploy windows, pure: allow windows in a time zone, freezes, and the next open time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shipyard.engine.rollout.windows import check
from shipyard.primitives.spec.pipeline import WindowsSpec

SEOUL = ZoneInfo("Asia/Seoul")
NIGHT = WindowsSpec.model_validate({
    "timezone": "Asia/Seoul", "allow": [{"days": "mon-fri", "from": "02:00", "to": "04:00"}],
    "freeze": [{"from": "2026-12-24T00:00", "to": "2027-01-02T00:00", "reason": "year-end freeze"}]})


def at(y: int, mo: int, d: int, h: int, mi: int = 0, zone: ZoneInfo = SEOUL) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=zone).timestamp()


def test_outside_the_window_is_refused_with_the_next_open_time_in_the_zone() -> None:
    v = check(NIGHT, at(2026, 12, 1, 15))  # a Tuesday afternoon in Seoul
    assert not v.allowed and "outside the deploy windows (mon-fri 02:00–04:00 Asia/Seoul)" in v.reason
    assert v.next_open == dt.datetime(2026, 12, 2, 2, 0, tzinfo=SEOUL)
    assert "next allowed 2026-12-02 02:00 KST" in v.message("prod")


def test_inside_the_window_is_allowed_and_the_end_is_exclusive() -> None:
    assert check(NIGHT, at(2026, 12, 2, 2, 30)).allowed
    assert not check(NIGHT, at(2026, 12, 2, 4, 0)).allowed
    assert not check(NIGHT, at(2026, 12, 5, 3)).allowed, "Saturday"


def test_a_freeze_refuses_inside_a_window_and_the_next_open_is_after_it() -> None:
    v = check(NIGHT, at(2026, 12, 28, 3))  # a Monday, inside the allow window, inside the freeze
    assert not v.allowed and "year-end freeze" in v.reason
    assert v.next_open == dt.datetime(2027, 1, 4, 2, 0, tzinfo=SEOUL), "the first weekday window after it"


def test_a_window_past_midnight_and_no_windows_at_all() -> None:
    late = WindowsSpec.model_validate({"timezone": "UTC", "allow": [{"days": "fri", "from": "22:00", "to": "02:00"}]})
    assert check(late, at(2026, 12, 4, 23, zone=ZoneInfo("UTC"))).allowed  # Friday 23:00
    assert check(late, at(2026, 12, 5, 1, zone=ZoneInfo("UTC"))).allowed  # Saturday 01:00, the same window
    assert not check(late, at(2026, 12, 5, 23, zone=ZoneInfo("UTC"))).allowed
    assert check(None, 0).allowed and check(WindowsSpec(), 0).allowed


@pytest.mark.parametrize("bad, where", [
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"allow": [{"days": "mon-funday", "from": "02:00", "to": "04:00"}]}, "expected days"),
    ({"allow": [{"from": "25:00", "to": "04:00"}]}, "expected a time"),
    ({"freeze": [{"from": "2027-01-02T00:00", "to": "2026-12-24T00:00"}]}, "'to' must come after 'from'"),
])
def test_malformed_windows_are_refused(bad: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        WindowsSpec.model_validate(bad)
