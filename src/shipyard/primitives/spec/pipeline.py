"""The spec's release command and hooks: shell commands shipyard runs around a deployment.

``[app] release`` (one command or a list) runs once per deploy inside the new release, with that
environment's whole configuration and secrets, after the build and before any instance of the new release
takes traffic; ``[environments.X] release`` overrides it (``release = ""`` skips it there). ``[hooks]``:
``pre_build`` and ``pre_deploy`` abort the deploy when they fail; ``post_deploy`` and ``post_rollback``
are recorded and shown when they fail, never undo anything. ``[environments.X.windows]``: when deploys
may start (``allow``) and may not (``freeze``), in the environment's ``timezone``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from shipyard.primitives.spec.base import MAX_LIST, Duration, SpecModel

HOOKS = ("pre_build", "pre_deploy", "post_deploy", "post_rollback")


def commands(value: Any) -> Any:
    """``"cmd"`` → ``["cmd"]``, ``""`` → ``[]`` (nothing to run), a list as is."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


Commands = Annotated[list[Annotated[str, Field(min_length=1, max_length=16_384)]], BeforeValidator(commands),
                     Field(max_length=MAX_LIST)]
CommandTimeout = Annotated[Duration, Field(gt=0, le=24 * 3600)]


class HooksSpec(SpecModel):
    pre_build: Commands = []
    pre_deploy: Commands = []
    post_deploy: Commands = []
    post_rollback: Commands = []
    timeout: CommandTimeout = 300.0  # each hook command's

    def of(self, hook: str) -> list[str]:
        cmds: list[str] = getattr(self, hook)
        return cmds


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> frozenset[int]:
    """``mon-fri``, ``sat,sun``, ``mon``, ``daily`` → weekday numbers (Monday 0)."""
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if part in ("daily", "*", "all"):
            return frozenset(range(7))
        lo, _, hi = part.partition("-")
        if lo not in _DAYS or (hi and hi not in _DAYS):
            raise ValueError(f"expected days like 'mon-fri' or 'sat,sun', got {text!r}")
        a, b = _DAYS.index(lo), _DAYS.index(hi or lo)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


def _hhmm(value: Any) -> Any:
    if isinstance(value, str):
        hh, sep, mm = value.partition(":")
        if not (sep and hh.isdigit() and mm.isdigit() and 0 <= int(hh) <= 24 and 0 <= int(mm) < 60
                and (int(hh) < 24 or int(mm) == 0)):
            raise ValueError(f"expected a time like '02:00', got {value!r}")
        return int(hh) * 60 + int(mm)
    raise ValueError(f"expected a time like '02:00', got {value!r}")


Minutes = Annotated[int, BeforeValidator(_hhmm)]


class AllowWindow(SpecModel):
    days: str = "daily"
    from_: Minutes = Field(alias="from")
    to: Minutes

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value


class FreezeWindow(SpecModel):
    from_: datetime = Field(alias="from")
    to: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> FreezeWindow:
        if self.to <= self.from_:
            raise ValueError("'to' must come after 'from'")
        return self


class WindowsSpec(SpecModel):
    timezone: str = "UTC"
    allow: Annotated[list[AllowWindow], Field(max_length=MAX_LIST)] = []
    freeze: Annotated[list[FreezeWindow], Field(max_length=MAX_LIST)] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as 'Asia/Seoul' or 'UTC')") from None
        return value


class PromotionSpec(SpecModel):
    """``[environments.prod.promotion]``: prod takes only releases that served ``from``…"""

    from_: str = Field(alias="from")
    soak: Annotated[Duration, Field(ge=0, le=90 * 86400)] = 0.0  # …for at least this long…
    require_verify: bool = False  # …and passed a deploy's verify step there
