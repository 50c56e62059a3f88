"""``[metrics]`` and ``[[alerts]]``: the Prometheus endpoint, the history's retention, alert rules.

An alert ``expr`` compares one of shipyard's own series with a threshold::

    error_rate > 5%          p95 > 2s          rps < 1          backup_age{source="db"} > 26h

The traffic series are rates over a window, 10 s unless the expression names one as PromQL does:
``error_rate[1m] > 5%`` (``WINDOWED``; 1 s to 1 h).

``parse_expr`` is the one parser (the spec validates with it, the engine evaluates what it returns);
``SERIES`` names every series, the unit its threshold is written in and the labels it takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, field_validator

from shipyard.primitives.spec.base import Duration, SpecModel
from shipyard.primitives.spec.durations import parse_duration, parse_percent

Unit = Literal["fraction", "seconds", "number"]


@dataclass(frozen=True)
class SeriesDef:
    unit: Unit
    labels: tuple[str, ...] = ()
    help: str = ""


SERIES: dict[str, SeriesDef] = {
    "error_rate": SeriesDef("fraction", help="errors / requests over the rate window (10 s unless [window])"),
    "availability": SeriesDef("fraction", help="1 - error_rate over the rate window"),
    "p50": SeriesDef("seconds", help="median latency over the rate window"),
    "p95": SeriesDef("seconds", help="95th percentile latency over the rate window"),
    "p99": SeriesDef("seconds", help="99th percentile latency over the rate window"),
    "rps": SeriesDef("number", help="requests per second over the rate window"),
    "cpu": SeriesDef("fraction", help="busiest instance's CPU, share of one core (newest point)"),
    "memory": SeriesDef("fraction", help="largest instance's RSS, share of its memory limit (newest point)"),
    "restarts": SeriesDef("number", help="instance restarts in the last 10 minutes"),
    "up": SeriesDef("number", help="instances alive and ready (newest point)"),
    "health_failures": SeriesDef("number", help="worst consecutive failed health checks (newest point)"),
    "backup_age": SeriesDef("seconds", ("source",), "seconds since the newest successful backup"),
    "backup_failed": SeriesDef("number", ("source",), "sources whose newest backup run failed"),
    "drill_missed": SeriesDef("number", help="1 when the newest restore drill missed its objectives"),
    "cert_expires_in": SeriesDef("seconds", help="time until the soonest router TLS certificate expires"),
}
# ``expr = "promql: <query>"``: a PromQL alerting expression evaluated by ``[metrics] prometheus`` (true
# when the query returns a sample, as in a Prometheus alerting rule; ``{{ env }}`` is the environment).
PROMQL_PREFIX = "promql:"
# Series computed over a window of traffic, which ``series[window]`` sets.
WINDOWED = frozenset({"error_rate", "availability", "p50", "p95", "p99", "rps"})
MAX_WINDOW_S = 3600.0
OPS = (">=", "<=", "==", "!=", ">", "<")

_EXPR = re.compile(r"^\s*(?P<series>[a-z_][a-z0-9_]*)\s*(?:\{(?P<labels>[^}]*)\})?\s*"
                   r"(?:\[(?P<window>[^\]]*)\])?\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S.*?)\s*$")
_LABEL = re.compile(r'^\s*([a-z_][a-z0-9_]*)\s*=\s*"([^"\\]*)"\s*$')
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class AlertExpr:
    series: str
    labels: tuple[tuple[str, str], ...]
    op: str
    threshold: float  # in the series' unit: a fraction, seconds or a plain number
    text: str
    promql: str | None = None  # the query of a ``promql:`` expression (series "promql", no threshold)
    window: float | None = None  # ``series[window]``: seconds (None: the evaluator's default rate window)

    def holds(self, value: float) -> bool:
        if self.promql is not None:
            return True  # the query's comparison already chose its samples: any sample is true
        t = self.threshold
        return {">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t,
                "==": value == t, "!=": value != t}[self.op]

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


def parse_expr(text: str) -> AlertExpr:
    """``series{label="v"} op threshold`` → ``AlertExpr``; ``ValueError`` says what is wrong."""
    if text.strip().startswith(PROMQL_PREFIX):
        query = text.strip()[len(PROMQL_PREFIX):].strip()
        if not query:
            raise ValueError("expected a PromQL query after 'promql:', e.g. 'promql: up == 0'")
        return AlertExpr("promql", (), "", 0.0, " ".join(text.split()), promql=query)
    m = _EXPR.match(text)
    if m is None:
        raise ValueError(f"expected '<series> <op> <threshold>' such as 'error_rate > 5%', got {text!r} "
                         f"(comparisons: {', '.join(sorted(OPS))})")
    name = m.group("series")
    sdef = SERIES.get(name)
    if sdef is None:
        raise ValueError(f"unknown series {name!r} (known: {', '.join(SERIES)})")
    labels: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in (m.group("labels") or "").split(","))):
        lm = _LABEL.match(part)
        if lm is None:
            raise ValueError(f'expected labels written key="value", got {part!r}')
        if lm.group(1) not in sdef.labels:
            takes = ", ".join(sdef.labels) or "no labels"
            raise ValueError(f"{name} does not take the label {lm.group(1)!r} (it takes {takes})")
        labels.append((lm.group(1), lm.group(2)))
    window = _window(name, m.group("window"))
    raw = m.group("value")
    try:
        threshold = _threshold(sdef.unit, raw)
    except ValueError as exc:
        raise ValueError(f"threshold {raw!r} for {name}: {exc}") from None
    return AlertExpr(name, tuple(labels), m.group("op"), threshold, " ".join(text.split()), window=window)


def _window(series: str, raw: str | None) -> float | None:
    if raw is None:
        return None
    if series not in WINDOWED:
        raise ValueError(f"{series} takes no [window] (the rate series do: {', '.join(sorted(WINDOWED))})")
    try:
        window = parse_duration(raw.strip())
    except ValueError as exc:
        raise ValueError(f"window [{raw}] of {series}: {exc}") from None
    if not 1 <= window <= MAX_WINDOW_S or window != int(window):
        raise ValueError(f"window [{raw}] of {series}: whole seconds from 1s to 1h")
    return window


def _threshold(unit: Unit, raw: str) -> float:
    if unit == "fraction":
        if not raw.endswith("%"):
            raise ValueError("write it as a percentage, e.g. '5%'")
        return parse_percent(raw, upper=None)
    if unit == "seconds":
        return parse_duration(raw)
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def _check_expr(text: str) -> str:
    return parse_expr(text).text


PLACEHOLDERS = ("alertname", "env", "expr", "value", "threshold", "severity")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def _check_summary(text: str) -> str:
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{{ {name} }}}} (known: {', '.join(PLACEHOLDERS)})")
    return text


def render_summary(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _check_alert_name(name: str) -> str:
    if not _ALERT_NAME.match(name):
        raise ValueError(f"alert names are identifiers (letters, digits, '_'; Prometheus' alertname), got {name!r}")
    return name


class HistoryRetention(SpecModel):
    raw: Annotated[Duration, Field(gt=0)] = 24 * 3600.0  # 10-second points
    minute: Annotated[Duration, Field(gt=0)] = 90 * 86400.0  # 1-minute points


class MetricsSpec(SpecModel):
    """``listen``: where the control plane serves Prometheus text ("" switches the endpoint off). When the
    port is taken the control plane serves on a free port instead and says where (control.json, its log)."""

    listen: str = "127.0.0.1:9420"
    retention: HistoryRetention = HistoryRetention()
    default_alerts: StrictBool = True  # the shipped rules (engine.alerting.defaults) besides [[alerts]]
    prometheus: str | None = None  # base URL of the Prometheus that evaluates ``promql:`` alert expressions

    @field_validator("prometheus")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"expected an http(s) URL such as 'http://127.0.0.1:9090', got {value!r}")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and (not (m := _LISTEN.match(value)) or int(m.group("port")) > 65535):
            raise ValueError(f"expected host:port such as '127.0.0.1:9420' (or \"\" for off), got {value!r}")
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class AlertSpec(SpecModel):
    name: Annotated[str, AfterValidator(_check_alert_name)]
    env: str | None = None  # None: every environment
    expr: Annotated[str, AfterValidator(_check_expr)]
    for_: Annotated[Duration, Field(alias="for")] = 0.0
    keep_firing_for: Duration = 0.0
    severity: Literal["critical", "warning", "info"] = "warning"
    summary: Annotated[str, AfterValidator(_check_summary)] = "{{ alertname }} on {{ env }}: {{ expr }} (value {{ value }})"
    runbook_url: str | None = None

    @property
    def parsed(self) -> AlertExpr:
        return parse_expr(self.expr)
