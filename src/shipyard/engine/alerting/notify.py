"""Notifications, pure: routing by labels, grouping with Alertmanager's timers, silences.

    firing alerts (every evaluation) ──route──▶ groups (route × group_by labels) ──flush when due──▶ notifications
                                                    │ group_wait after a group is born, then every group_interval
                                                    └ a flush sends when a firing alert is new to the group's
                                                      receivers, an alert they were told about resolved, or
                                                      repeat_interval passed since the last notification

Silenced alerts are left out of a flush (so a silence that ends makes its alert new again). An alert
leaves its group after the flush that reports it resolved: exactly one resolved notification. Lifecycle
events (deployments, backups, drills) are routed the same way but sent at once, one notification each.
``flush`` takes the time and returns new groups: the control plane saves them with the deliveries they
produce and the alert states in one transaction, so a restart neither repeats nor loses a notification.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shipyard.primitives.spec.notifications import NotificationsSpec, RouteSpec

Labels = tuple[tuple[str, str], ...]
Status = Literal["firing", "resolved"]


def labels_of(d: Mapping[str, str]) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in d.items()))


def fingerprint(labels: Labels) -> str:
    return hashlib.sha256(repr(labels).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Alert:
    labels: Labels
    annotations: Labels = ()
    starts_at: float = 0.0
    ends_at: float | None = None  # set once resolved
    status: Status = "firing"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")

    def to_json(self) -> dict[str, Any]:
        return {"labels": dict(self.labels), "annotations": dict(self.annotations), "starts_at": self.starts_at,
                "ends_at": self.ends_at, "status": self.status, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Alert:
        return cls(labels_of(d["labels"]), labels_of(d.get("annotations") or {}), float(d["starts_at"]),
                   d.get("ends_at"), d.get("status", "firing"))


# -- silences -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    regex: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        return re.fullmatch(self.value, got) is not None if self.regex else got == self.value

    def __str__(self) -> str:
        return f"{self.name}{'=~' if self.regex else '='}{self.value}"


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|=)\s*(.*?)\s*$")


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """``env=prod,alertname=~High.*`` → matchers; ``ValueError`` says which part is wrong."""
    out: list[Matcher] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _MATCHER.match(part)
        if m is None or not m.group(3):
            raise ValueError(f"expected label=value or label=~regex, got {part!r}")
        if m.group(2) == "=~":
            try:
                re.compile(m.group(3))
            except re.error as exc:
                raise ValueError(f"{part!r}: not a regular expression ({exc})") from None
        out.append(Matcher(m.group(1), m.group(3), m.group(2) == "=~"))
    if not out:
        raise ValueError("a silence needs at least one matcher, e.g. env=prod,alertname=HighErrorRate")
    return tuple(out)


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def silences(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)


def silenced(labels: Labels, silences: Iterable[Silence], now: float) -> bool:
    d = dict(labels)
    return any(s.silences(d, now) for s in silences)


# -- routing --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float


@dataclass(frozen=True)
class RouteMatch:
    index: int  # the route's position in [notifications] routes (-1: no routes, every receiver)
    receivers: tuple[str, ...]
    timing: Timing


def _timing(spec: NotificationsSpec, route: RouteSpec | None) -> Timing:
    def pick(name: str) -> Any:
        own = getattr(route, name) if route is not None else None
        return own if own is not None else getattr(spec, name)

    return Timing(tuple(pick("group_by")), pick("group_wait"), pick("group_interval"), pick("repeat_interval"))


def route(spec: NotificationsSpec, labels: Mapping[str, str]) -> list[RouteMatch]:
    """The routes ``labels`` take, in order: the first match, and further ones while ``continue`` is set.
    Without routes every receiver gets everything; with routes, labels no route matches go nowhere."""
    if not spec.routes:
        names = tuple(r.name for r in spec.receivers)
        return [RouteMatch(-1, names, _timing(spec, None))] if names else []
    out: list[RouteMatch] = []
    for i, r in enumerate(spec.routes):
        if r.matches(labels):
            out.append(RouteMatch(i, tuple(r.receivers), _timing(spec, r)))
            if not r.continue_:
                break
    return out


# -- groups ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    key: str  # route index + group labels: stable across restarts and spec reloads that keep the route
    route: int
    receivers: tuple[str, ...]
    labels: Labels  # the group_by labels' values
    created_at: float
    next_flush_at: float
    alerts: tuple[Alert, ...] = ()
    last_notified_at: float | None = None
    notified: frozenset[str] = field(default_factory=frozenset)  # firing fingerprints told last time

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "route": self.route, "receivers": list(self.receivers),
                "labels": dict(self.labels), "created_at": self.created_at, "next_flush_at": self.next_flush_at,
                "alerts": [a.to_json() for a in self.alerts], "last_notified_at": self.last_notified_at,
                "notified": sorted(self.notified)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Group:
        return cls(d["key"], int(d["route"]), tuple(d["receivers"]), labels_of(d["labels"]),
                   float(d["created_at"]), float(d["next_flush_at"]),
                   tuple(Alert.from_json(a) for a in d.get("alerts", [])), d.get("last_notified_at"),
                   frozenset(d.get("notified", [])))


@dataclass(frozen=True)
class Notification:
    """What one receiver is sent: a group's firing and resolved alerts (or one lifecycle event)."""

    receiver: str
    group_key: str
    status: Status  # firing while any alert in it fires
    group_labels: Labels
    alerts: tuple[Alert, ...]
    kind: Literal["alert", "event"] = "alert"
    repeat: bool = False

    def to_json(self) -> dict[str, Any]:
        common = _common([a.labels for a in self.alerts])
        return {"kind": self.kind, "receiver": self.receiver, "group_key": self.group_key, "status": self.status,
                "group_labels": dict(self.group_labels), "common_labels": dict(common),
                "common_annotations": dict(_common([a.annotations for a in self.alerts])),
                "alerts": [a.to_json() for a in self.alerts], "repeat": self.repeat}


def _common(sets: Sequence[Labels]) -> Labels:
    if not sets:
        return ()
    first = set(sets[0])
    for s in sets[1:]:
        first &= set(s)
    return tuple(sorted(first))


def group_key(route_index: int, labels: Labels) -> str:
    return f"{route_index}:" + ",".join(f"{k}={v}" for k, v in labels)


def ingest(spec: NotificationsSpec, groups: Mapping[str, Group], firing: Sequence[Alert], now: float
           ) -> dict[str, Group]:
    """Put every firing alert in its groups (new groups wait ``group_wait``); an alert of a group that is
    no longer firing is marked resolved (its rule resolved, or was removed from the spec)."""
    out = dict(groups)
    seen: dict[str, set[str]] = {}
    for alert in firing:
        d = dict(alert.labels)
        for m in route(spec, d):
            glabels = tuple(sorted((k, d.get(k, "")) for k in m.timing.group_by))
            key = group_key(m.index, glabels)
            g = out.get(key) or Group(key, m.index, m.receivers, glabels, now, now + m.timing.group_wait)
            others = tuple(a for a in g.alerts if a.fingerprint != alert.fingerprint)
            out[key] = replace(g, receivers=m.receivers, alerts=(*others, replace(alert, status="firing",
                                                                                   ends_at=None)))
            seen.setdefault(key, set()).add(alert.fingerprint)
    for key, g in list(out.items()):
        live = seen.get(key, set())
        if any(a.status == "firing" and a.fingerprint not in live for a in g.alerts):
            out[key] = replace(g, alerts=tuple(
                a if a.status == "resolved" or a.fingerprint in live
                else replace(a, status="resolved", ends_at=now) for a in g.alerts))
    return out


def flush(spec: NotificationsSpec, groups: Mapping[str, Group], silences: Sequence[Silence], now: float
          ) -> tuple[dict[str, Group], list[str], list[Notification]]:
    """Flush every group that is due: (groups kept, keys of groups ended, notifications to deliver)."""
    kept: dict[str, Group] = {}
    ended: list[str] = []
    notes: list[Notification] = []
    for key, g in groups.items():
        if g.next_flush_at > now:
            kept[key] = g
            continue
        timing = _group_timing(spec, g)
        firing = [a for a in g.alerts if a.status == "firing" and not silenced(a.labels, silences, now)]
        firing_fps = {a.fingerprint for a in firing}
        resolved = [a for a in g.alerts if a.status == "resolved" and a.fingerprint in g.notified]
        new = firing_fps - g.notified
        repeat = bool(firing) and g.last_notified_at is not None and now - g.last_notified_at >= timing.repeat_interval
        send = bool(new) or bool(resolved) or repeat
        g2 = replace(g, alerts=tuple(a for a in g.alerts if a.status == "firing"),
                     next_flush_at=now + timing.group_interval)
        if send:
            status: Status = "firing" if firing else "resolved"
            for name in g.receivers:
                receiver = spec.receiver(name)
                alerts = tuple(firing) + (tuple(resolved) if receiver is None or receiver.send_resolved else ())
                if status == "resolved" and receiver is not None and not receiver.send_resolved:
                    continue
                notes.append(Notification(name, key, status, g.labels, alerts,
                                          repeat=repeat and not new and not resolved))
            g2 = replace(g2, last_notified_at=now, notified=frozenset(firing_fps))
        if not g2.alerts:
            ended.append(key)
        else:
            kept[key] = g2
    return kept, ended, notes


def _group_timing(spec: NotificationsSpec, g: Group) -> Timing:
    r = spec.routes[g.route] if 0 <= g.route < len(spec.routes) else None
    return _timing(spec, r)


def next_due(groups: Iterable[Group]) -> float | None:
    return min((g.next_flush_at for g in groups), default=None)


def event_notifications(spec: NotificationsSpec, event: Alert, silences: Sequence[Silence], now: float
                        ) -> list[Notification]:
    """A lifecycle event's notifications: routed as an alert is, sent at once, never repeated."""
    if silenced(event.labels, silences, now):
        return []
    d = dict(event.labels)
    out: list[Notification] = []
    seen: set[str] = set()
    for m in route(spec, d):
        for name in m.receivers:
            if name not in seen:
                seen.add(name)
                glabels = tuple(sorted((k, d.get(k, "")) for k in m.timing.group_by))
                out.append(Notification(name, "event:" + group_key(m.index, glabels), "firing", glabels,
                                        (event,), kind="event"))
    return out
