"""Retention follows restic's documented ``forget`` semantics (pure function)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from shipyard.engine.backup import Backups, apply_policy
from shipyard.errors import BadInput
from shipyard.primitives.spec.backup import RetentionSpec

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


def kept(backups: list[tuple[str, float]], **policy: object) -> list[str]:
    return [d.id for d in apply_policy(backups, RetentionSpec.model_validate(policy), NOW) if d.keep]


def test_restic_docs_twelve_sundays_keep_daily_4() -> None:
    sundays = [(f"s{i}", ts(2019, 9, 1, 11) + i * 7 * 86400) for i in range(12)]
    assert dt.datetime.fromtimestamp(sundays[-1][1], dt.UTC).date() == dt.date(2019, 11, 17)
    assert kept(sundays, keep_daily=4) == ["s11", "s10", "s9", "s8"]


def test_restic_docs_daily_for_years_with_daily_weekly_monthly_yearly() -> None:
    start = dt.date(2000, 1, 1)
    days = [(str(start + dt.timedelta(d)), ts(2000, 1, 1, 12) + d * 86400)
            for d in range((dt.date(2009, 12, 31) - start).days + 1)]
    got = set(kept(days, keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=75))
    daily = {f"2009-12-{d}" for d in range(25, 32)}
    weekly = {"2009-12-20", "2009-12-13", "2009-12-06"}  # ISO weeks; Dec 27 and 31 are already daily
    monthly = {str(dt.date(2009, mo + 1, 1) - dt.timedelta(1)) for mo in range(1, 12)}  # Jan 31 .. Nov 30
    yearly = {f"{y}-12-31" for y in range(2000, 2009)}
    oldest = {"2000-01-01"}  # yearly count left over: the oldest backup is kept too
    assert got == daily | weekly | monthly | yearly | oldest
    assert len(got) == 7 + 3 + 11 + 9 + 1


def test_keep_hourly_keeps_newest_of_each_hour() -> None:
    backups = [("a", ts(2024, 5, 1, 10, 5)), ("b", ts(2024, 5, 1, 10, 50)), ("c", ts(2024, 5, 1, 11, 1)),
               ("d", ts(2024, 5, 1, 12, 0)), ("e", ts(2024, 5, 1, 12, 59))]
    assert kept(backups, keep_hourly=2) == ["e", "c"]
    assert kept(backups, keep_hourly=3) == ["e", "c", "b"]
    # More periods asked for than exist: every period's newest, plus the oldest backup.
    assert kept(backups, keep_hourly=10) == ["e", "c", "b", "a"]


def test_keep_last_and_reasons() -> None:
    backups = [(f"b{i}", ts(2024, 1, 1) + i * 60) for i in range(5)]
    decisions = apply_policy(backups, RetentionSpec(keep_last=2), NOW)
    assert [(d.id, d.keep, d.reasons) for d in decisions] == [
        ("b4", True, ("last",)), ("b3", True, ("last",)), ("b2", False, ()), ("b1", False, ()), ("b0", False, ())]
    assert kept(backups[:2], keep_last=3) == ["b1", "b0"]


def test_keep_within_is_measured_from_the_newest_backup() -> None:
    newest = NOW - 100 * 86400  # backups stopped 100 days ago: keep_within must not delete them all
    backups = [(f"d{i}", newest - i * 86400) for i in range(60)]
    assert kept(backups, keep_within="30d") == [f"d{i}" for i in range(30)]


def test_backups_in_the_future_do_not_move_keep_within() -> None:
    backups = [("future", NOW + 365 * 86400), ("now", NOW - 60), ("old", NOW - 40 * 86400)]
    # restic: duration options ignore future snapshots for "latest" (and those are kept).
    assert kept(backups, keep_within="30d") == ["future", "now"]


def test_rules_are_ored() -> None:
    backups = [(f"d{i}", ts(2024, 3, 31, 12) - i * 86400) for i in range(40)]
    assert set(kept(backups, keep_last=1, keep_monthly=2)) == {"d0", "d31"}  # Mar 31, Feb 29


def test_empty_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention policy is empty"):
        RetentionSpec()
    with pytest.raises(ValidationError, match="retention policy is empty"):
        RetentionSpec.model_validate({"keep_within": "0s"})
    with pytest.raises(ValidationError):
        RetentionSpec(keep_daily=0)
    with pytest.raises(BadInput, match="no retention policy"):
        apply_policy([("a", NOW)], None, NOW)


def test_forget_dry_run_then_for_real(tmp_path: Path, make_backups: Callable[..., Backups]) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    backups = make_backups([{"kind": "files", "name": "d", "path": "d"}], retention={"keep_last": 2},
                           copy_to=[str(tmp_path / "offsite")])
    for _ in range(4):
        [res] = backups.run()
        assert res.ok and res.copies[0].ok, res
    ids = [m.id for m in backups.list_backups()]
    plan = backups.forget(dry_run=True)
    assert [r.to_dict()["remove"] for r in plan] == [ids[1::-1], ids[1::-1]]  # primary and offsite
    assert [m.id for m in backups.list_backups()] == ids
    backups.forget()
    assert [m.id for m in backups.list_backups()] == ids[2:]
    assert [m.id for m in backups.copies[0].manifests()] == ids[2:]

    with pytest.raises(BadInput, match="no retention policy"):
        make_backups([{"kind": "files", "name": "d", "path": "d"}]).forget(dry_run=True)
