"""``[status_page]`` and ``[reports]``: the faces users and managers look at (docs/status-page.md).

    [status_page]
    listen = "127.0.0.1:8088"
    url = "https://status.tarot.example"   # optional: where visitors reach it (default: from listen)
    title = "Tarot — service status"
    components = [
      { name = "API", env = "prod" },
      { name = "Website", check = { url = "http://127.0.0.1:8000/", interval = "30s",
                                    conditions = ["status == 200", "response_time < 500ms"] } },
    ]

    [reports]
    daily = "0 9 * * *"
    weekly = "0 9 * * mon"
    after_deploy = "1h"
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from shipyard.primitives.spec.base import MAX_LIST, Duration, Percent, SpecModel
from shipyard.primitives.spec.durations import parse_duration

_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(?P<port>\d{1,5})$")
# `status == 200`, `status < 400`, `response_time < 500ms`
_CONDITION = re.compile(r"^\s*(?P<what>status|response_time)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>\S+)\s*$")


def _condition(text: str) -> str:
    m = _CONDITION.match(text)
    if m is None:
        raise ValueError(f"expected 'status == 200' or 'response_time < 500ms', got {text!r}")
    if m.group("what") == "status":
        if not m.group("value").isdigit():
            raise ValueError(f"status compares with a number, got {m.group('value')!r}")
    else:
        parse_duration(m.group("value"))
    return text.strip()


class CheckSpec(SpecModel):
    """A synthetic HTTP check, run by the control plane; its results feed the component's uptime."""

    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    interval: Annotated[Duration, Field(ge=1, le=3600)] = 30.0
    timeout: Annotated[Duration, Field(ge=0.1, le=60)] = 5.0
    conditions: Annotated[tuple[Annotated[str, AfterValidator(_condition)], ...],
                          Field(max_length=20)] = ("status == 200",)


class ComponentSpec(SpecModel):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    env: str | None = None
    check: CheckSpec | None = None
    description: Annotated[str, Field(max_length=300)] = ""

    @model_validator(mode="after")
    def _one_source(self) -> ComponentSpec:
        if (self.env is None) == (self.check is None):
            raise ValueError("a component needs exactly one of env (an environment) or check (an HTTP check)")
        return self


class StatusPageSpec(SpecModel):
    listen: str = "127.0.0.1:8088"
    # Where visitors reach the page (summary.json's page.url, the feed's links); default: the listen address.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] = "Service status"
    components: Annotated[tuple[ComponentSpec, ...], Field(max_length=MAX_LIST)] = ()

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not (m := _LISTEN.match(value)) or int(m.group("port")) > 65535:
            raise ValueError(f"expected host:port such as '127.0.0.1:8088', got {value!r}")
        return value

    @field_validator("components")
    @classmethod
    def _unique(cls, value: tuple[ComponentSpec, ...]) -> tuple[ComponentSpec, ...]:
        names = [c.name for c in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"component names must be unique: {', '.join(dup)}")
        return value

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def component(self, name: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.name == name), None)


def _cron(text: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(text):
        raise ValueError(f"not a cron expression: {text!r}")
    return text


class ReportsSpec(SpecModel):
    slo: Percent = 0.999  # availability objective the reports compare against ("99.9%")
    daily: Annotated[str, AfterValidator(_cron)] | None = None
    weekly: Annotated[str, AfterValidator(_cron)] | None = None
    after_deploy: Annotated[Duration, Field(ge=60)] | None = None


def faces_problems(status: StatusPageSpec | None, envs: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Components that name an environment the spec does not define."""
    if status is None or envs is None:
        return []
    return [(("status_page", "components", i, "env"),
             f"unknown environment {c.env!r} (known: {', '.join(sorted(envs))})")
            for i, c in enumerate(status.components) if c.env is not None and c.env not in envs]
