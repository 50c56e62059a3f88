"""``[notifications]``: receivers, routes, grouping (Alertmanager's model and defaults).

    [notifications]
    group_by = ["alertname", "env"]       # one notification per alertname × env
    group_wait = "30s"                    # a new group waits this long for its siblings
    group_interval = "5m"                 # then changes are sent at most this often
    repeat_interval = "4h"                # an unchanged firing group is sent again after this
    [[notifications.receivers]]
    name = "ops-slack"
    kind = "slack"                        # slack | webhook | email | alertmanager
    url_secret = "SLACK_WEBHOOK_URL"      # credentials are secrets of the environments
    [[notifications.routes]]
    match = { severity = "critical" }     # label equality; match_re = { env = "prod|staging" }
    receivers = ["ops-slack"]
    continue = false                      # true: later routes are tried too

A receiver's secret is read from the environment a notification is about, so every environment whose
notifications a route can send to a receiver must have it (``missing_secrets``, checked by ``shipyard up``
and ``shipyard notify test``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, field_validator

from shipyard.errors import ConfigError
from shipyard.primitives.spec.base import MAX_LIST, MAX_TABLE, Duration, SpecModel

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
Kind = Literal["slack", "webhook", "email", "alertmanager"]


def _receiver_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"expected letters, digits, '.', '_' or '-' (at most 63), got {value!r}")
    return value


def _label_name(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(f"label names are identifiers (letters, digits, '_'), got {value!r}")
    return value


def _secret_name(value: str) -> str:
    if not _SECRET.match(value):
        raise ValueError(f"expected a secret name (letters, digits and '_'), got {value!r}")
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"expected an e-mail address like 'ops@example.com', got {value!r}")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    return value


LabelName = Annotated[str, AfterValidator(_label_name)]
SecretName = Annotated[str, AfterValidator(_secret_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Address = Annotated[str, AfterValidator(_address)]


class ReceiverSpec(SpecModel):
    name: Annotated[str, AfterValidator(_receiver_name)]
    kind: Kind
    url_secret: SecretName | None = None  # slack, webhook (or url)
    url: HttpUrl | None = None  # webhook, alertmanager
    send_resolved: StrictBool = True
    # email
    smtp_host: str | None = None
    smtp_port: Annotated[StrictInt, Field(ge=1, le=65535)] = 587
    from_: Annotated[Address | None, Field(alias="from")] = None
    to: Annotated[list[Address], Field(max_length=MAX_LIST)] = []
    starttls: StrictBool = True
    username: str | None = None
    password_secret: SecretName | None = None
    tls_ca_file: str | None = None  # a private CA for the SMTP server's certificate (default: the system's)
    timeout: Annotated[Duration, Field(gt=0, le=60)] = 10.0

    def secret_names(self) -> list[tuple[str, str]]:
        """``(key, secret name)`` of every secret this receiver reads."""
        return [(k, v) for k, v in (("url_secret", self.url_secret), ("password_secret", self.password_secret))
                if v is not None]

    def problems(self) -> list[tuple[str, str]]:
        """``(key, problem)``: what this kind of receiver needs and does not take."""
        out: list[tuple[str, str]] = []
        needs = {"slack": ("url_secret",), "alertmanager": ("url",), "email": ("smtp_host", "from", "to")}
        for key in needs.get(self.kind, ()):
            if not getattr(self, "from_" if key == "from" else key):
                out.append((key, f"a {self.kind} receiver needs {key}"))
        if self.kind == "webhook" and (self.url is None) == (self.url_secret is None):
            out.append(("url_secret", "a webhook receiver needs exactly one of url_secret or url"))
        email_keys = ("smtp_host", "from_", "to", "username", "password_secret", "tls_ca_file")
        if self.kind != "email":
            for key in email_keys:
                if getattr(self, key):
                    out.append((key.rstrip("_"), f"only email receivers take {key.rstrip('_')}"))
        if self.kind == "slack" and self.url is not None:
            out.append(("url", "a Slack webhook URL is a credential: store it as a secret and name it in url_secret"))
        if self.kind == "email" and self.url is not None:
            out.append(("url", "email receivers take no url"))
        if self.kind in ("email", "alertmanager") and self.url_secret is not None:
            out.append(("url_secret", f"{self.kind} receivers take no url_secret"))
        if self.username and not self.password_secret:
            out.append(("password_secret", "username is set: the password must be a secret (password_secret)"))
        return out


class RouteSpec(SpecModel):
    match: Annotated[dict[LabelName, str], Field(max_length=MAX_TABLE)] = {}
    match_re: Annotated[dict[LabelName, Annotated[str, AfterValidator(_regex)]], Field(max_length=MAX_TABLE)] = {}
    receivers: Annotated[list[str], Field(min_length=1, max_length=MAX_LIST)]
    continue_: Annotated[StrictBool, Field(alias="continue")] = False
    # Per-route overrides of the [notifications] grouping (None: the section's).
    group_by: Annotated[list[LabelName], Field(max_length=MAX_LIST)] | None = None
    group_wait: Duration | None = None
    group_interval: Annotated[Duration, Field(gt=0)] | None = None
    repeat_interval: Annotated[Duration, Field(gt=0)] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (all(labels.get(k, "") == v for k, v in self.match.items())
                and all(re.fullmatch(v, labels.get(k, "")) is not None for k, v in self.match_re.items()))

    def can_match_env(self, env: str) -> bool:
        """Whether a notification about ``env`` can take this route (only the env label is known ahead)."""
        if "env" in self.match and self.match["env"] != env:
            return False
        return "env" not in self.match_re or re.fullmatch(self.match_re["env"], env) is not None


class NotificationsSpec(SpecModel):
    group_by: Annotated[list[LabelName], Field(max_length=MAX_LIST)] = ["alertname", "env"]
    group_wait: Duration = 30.0
    group_interval: Annotated[Duration, Field(gt=0)] = 300.0
    repeat_interval: Annotated[Duration, Field(gt=0)] = 4 * 3600.0
    receivers: Annotated[list[ReceiverSpec], Field(max_length=MAX_LIST)] = []
    routes: Annotated[list[RouteSpec], Field(max_length=MAX_LIST)] = []

    @field_validator("receivers")
    @classmethod
    def _unique(cls, receivers: list[ReceiverSpec]) -> list[ReceiverSpec]:
        seen: set[str] = set()
        for r in receivers:
            if r.name in seen:
                raise ValueError(f"two receivers are named {r.name!r}")
            seen.add(r.name)
        return receivers

    def receiver(self, name: str) -> ReceiverSpec | None:
        return next((r for r in self.receivers if r.name == name), None)

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-key problems: what a receiver's kind needs, routes naming unknown receivers."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for i, r in enumerate(self.receivers):
            out += [(("receivers", i, key), text) for key, text in r.problems()]
        names = [r.name for r in self.receivers]
        for i, route in enumerate(self.routes):
            for j, name in enumerate(route.receivers):
                if name not in names:
                    out.append((("routes", i, "receivers", j),
                                f"unknown receiver {name!r} (known: {', '.join(names) or 'none'})"))
        return out

    def reachable(self, env: str) -> list[ReceiverSpec]:
        """Receivers a notification about ``env`` may be sent to (no routes: every receiver)."""
        if not self.routes:
            return list(self.receivers)
        names = {n for route in self.routes if route.can_match_env(env) for n in route.receivers}
        return [r for r in self.receivers if r.name in names]


def missing_secrets(spec: NotificationsSpec, envs: Iterable[str],
                    secret_names: Callable[[str], Iterable[str]], only: str | None = None) -> list[str]:
    """One line per receiver secret an environment it serves does not have, with its key path (``only``:
    of that receiver, whether or not a route reaches it)."""
    out: list[str] = []
    for env in sorted(envs):
        have = set(secret_names(env))
        reached = spec.reachable(env) if only is None else [r for r in spec.receivers if r.name == only]
        for receiver in reached:
            i = spec.receivers.index(receiver)
            for key, name in receiver.secret_names():
                if name not in have:
                    out.append(f"notifications.receivers[{i}].{key}: {name!r} is not a secret of environment "
                               f"{env!r} (`shipyard secrets set --env {env} {name}=...`)")
    return out


def check_secrets(spec: NotificationsSpec, envs: Iterable[str], secret_names: Callable[[str], Iterable[str]],
                  where: str = "shipyard.toml", only: str | None = None) -> None:
    """Raise ``ConfigError`` (exit 2) naming each receiver secret an environment it serves lacks."""
    missing = missing_secrets(spec, envs, secret_names, only)
    if missing:
        raise ConfigError(f"{where}: invalid configuration", problems=missing)
