"""Human durations and percentages used throughout shipyard.toml.

Every duration is bounded: non-finite values are refused and a duration is at most ``MAX_DURATION``
(30 days) unless its key says otherwise (``upper=``), so that no setting can hold a lock, a timer or a
loop for ever (docs/security.md lists the bounds).
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*(ms|s|m|h|d|w)?\s*$")
_COMPOUND = re.compile(r"(\d{1,30}(?:\.\d{1,30})?)(ms|s|m|h|d|w)")
# Longer than any text a duration needs; keeps the regular expressions' work bounded.
_MAX_TEXT = 64

DAY = 86400.0
MAX_DURATION = 30 * DAY


def _limit(seconds: float) -> str:
    return format_duration(seconds) if seconds < 2 * DAY else f"{seconds / DAY:g}d"


def parse_duration(value: str | int | float, *, upper: float = MAX_DURATION) -> float:
    """``"1s"``, ``"500ms"``, ``"5m"``, ``"1h30m"``, ``"30d"`` or a number of seconds → seconds.

    Refuses negative and non-finite values and anything above ``upper`` seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}"[:120])
    if isinstance(value, int | float):
        seconds = float(value) if isinstance(value, float) or abs(value) < 10**300 else math.inf
    else:
        seconds = _parse_text(value)
    if math.isnan(seconds):
        raise ValueError("expected a duration like '30s' or '5m', got nan")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    if seconds > upper:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"duration must be at most {_limit(upper)}, got {shown}")
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"expected a duration like '30s', '5m' or '1h', got {value[:40]!r}...")
    m = _DURATION.match(text)
    if m:
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    parts = _COMPOUND.findall(text)
    if parts and "".join(n + u for n, u in parts) == text.replace(" ", ""):
        return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ValueError(f"expected a duration like '30s', '5m' or '1h', got {value!r}")


def parse_percent(value: str | int | float, *, upper: float | None = 1.0) -> float:
    """``"5%"`` → 0.05; a bare number is taken as a fraction when ≤ 1, else as percent.

    ``upper`` is the largest fraction allowed (None: no limit, e.g. CPU in cores where "250%" is 2.5).
    Non-finite values are always refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a percentage like '5%', got {value!r}"[:120])
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) >= 10**300:
            raise ValueError("percentage must be a finite number")
        frac = float(value) if value <= 1 else float(value) / 100.0
    else:
        text = value.strip()
        if len(text) > _MAX_TEXT:
            raise ValueError(f"expected a percentage like '5%', got {value[:40]!r}...")
        try:
            frac = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a percentage like '5%', got {value!r}") from None
        if not text.endswith("%") and frac > 1:
            frac /= 100.0
    if not math.isfinite(frac):
        raise ValueError(f"percentage must be a finite number, got {value!r}")
    if frac < 0.0 or (upper is not None and frac > upper):
        raise ValueError(f"percentage must be between 0% and {upper * 100:g}%, got {value!r}"
                         if upper is not None else f"percentage must not be negative, got {value!r}")
    return frac


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s".replace(".0s", "s")
    if seconds < 7200:
        return f"{seconds / 60:.1f}m".replace(".0m", "m")
    return f"{seconds / 3600:.1f}h".replace(".0h", "h")
