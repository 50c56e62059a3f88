"""The alert evaluator: every second, every rule of every environment.

The rules come from the spec (``SpecWatch``: re-read when the file changes) — the shipped defaults plus
``[[alerts]]``. Each second it pulls every environment's traffic of the last seconds from the router
(``collector.LiveTraffic``: the rate windows, so a fault is seen within seconds, not at the next 10 s
point); after each recorder tick, and at least every 5 s, it also re-reads the last 10 minutes of raw
points and the backup records (the gauges, restarts, backups: they change no faster). Every series is
computed once per environment (``engine.alerting.values``) and each rule's state machine stepped
(``engine.alerting.states``). A state that changed is saved with the event of its transition in one
transaction (``alert_firing`` / ``alert_resolved`` / ``alert_pending``), so a control-plane restart
picks up exactly where it stopped: it neither forgets a firing alert nor fires it a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from shipyard.control.alertvalues import ExtraValues
from shipyard.control.certs import CertExpiry
from shipyard.control.collector import PULL_OFFSET_S, LiveTraffic
from shipyard.control.notify import Notifier, alert_of
from shipyard.control.specwatch import SpecWatch
from shipyard.engine.alerting.history import RAW_STEP, Point
from shipyard.engine.alerting.rules import Rule, rules_for
from shipyard.engine.alerting.states import AlertState, step
from shipyard.engine.alerting.values import (
    LIVE_S,
    RESTARTS_WINDOW_S,
    BackupFacts,
    env_values,
    value_of,
    window_of,
)
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.alerting import WINDOWED
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")

EVAL_INTERVAL_S = 5.0  # without live traffic; and how old the history read may get with it
LIVE_INTERVAL_S = 1.0
BACKUP_SERIES = ("backup_age", "backup_failed", "drill_missed")
QUANTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class RuleView:
    rule: Rule
    state: AlertState

    def to_json(self) -> dict[str, Any]:
        s = self.state
        since = {"pending": s.active_since, "firing": s.fired_at, "resolved": s.resolved_at}.get(s.state)
        return {**self.rule.to_json(), "state": s.state, "since": since, "value": s.value,
                "active_since": s.active_since, "summary": self.rule.render(s.value)}


class Evaluator:
    def __init__(self, *, store: Store, clock: Clock, specs: SpecWatch,
                 interval: float = EVAL_INTERVAL_S, notifier: Notifier | None = None,
                 certs: CertExpiry | None = None, live: LiveTraffic | None = None) -> None:
        self.extra = ExtraValues(certs)  # cert_expires_in and promql: expressions (control/alertvalues.py)
        self.store = store
        self.notifier = notifier  # firing alerts → groups → deliveries, saved with the states
        self.clock = clock
        self.specs = specs
        self.interval = interval
        self.states: dict[tuple[str, str], AlertState] | None = None  # loaded on the first evaluation
        self.rules: list[Rule] = []
        self._rules_of: Spec | None = None
        self.live = live
        self.evaluations = 0
        # Set by the recorder after each tick: new points are read (and evaluated) at once.
        self.wake = asyncio.Event()
        self._read: dict[str, tuple[list[Point], BackupFacts | None]] = {}  # env → history read, backups
        self._read_at: float | None = None

    def view(self, env: str | None = None) -> list[RuleView]:
        states = self.states or {}
        return [RuleView(r, states.get(r.key) or AlertState(r.name, r.env))
                for r in self.rules if env is None or r.env == env]

    def critical_firing(self, env: str) -> bool:
        """Whether a critical rule of ``env`` fires (the status page shows its components degraded)."""
        return any(v.state.state == "firing" and v.rule.severity == "critical" for v in self.view(env))

    async def run_forever(self) -> None:
        at: float | None = None  # the scheduled time of this evaluation (live: just after a second)
        while True:
            reread = self.wake.is_set() or self._read_at is None or self.clock.time() - self._read_at >= self.interval
            self.wake.clear()
            try:
                await self.once(reread, at)
            except ShipyardError as err:
                log.warning("alert evaluator: %s", err)
            except Exception:  # a bug here must not end alerting silently
                log.exception("alert evaluator crashed an evaluation")
            if self.live is not None:  # just after the router closes each second's slice
                now = self.clock.time()
                at = int(now) + LIVE_INTERVAL_S + PULL_OFFSET_S
                await self.clock.sleep(max(0.0, at - now))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)

    async def once(self, reread: bool = True, at: float | None = None) -> list[tuple[Rule, AlertState, str]]:
        """Pull the live traffic, then evaluate (in a thread: the store is read and written)."""
        if self.live is not None:
            # The rules first: the first evaluation after a restart reads the router's last minute, never
            # a window without the seconds it covers.
            spec = self.specs.current()
            await self.live.pull(self._live_envs(self._rules(spec)) if spec is not None else [])
        return await asyncio.to_thread(self.evaluate, reread, at)

    def _rules(self, spec: Spec) -> list[Rule]:
        if spec is not self._rules_of:  # a new snapshot (SpecWatch re-read the file): parse its rules
            self.rules, self._rules_of = rules_for(spec), spec
        return self.rules

    @staticmethod
    def _live_envs(rules: list[Rule]) -> list[str]:
        return sorted({r.env for r in rules if r.expr.series in WINDOWED and window_of(r.expr) <= LIVE_S})

    def evaluate(self, reread: bool = True, at: float | None = None) -> list[tuple[Rule, AlertState, str]]:
        """One evaluation of every rule; returns the transitions (rule, new state, transition).
        ``reread``: read the history and backups again (else the last read's, with fresh live traffic).
        ``at``: the evaluation's scheduled time, as Prometheus stamps its evaluations, so that ``for``
        counts whole evaluation intervals and a late-running evaluation does not add one more second."""
        now = self.clock.time()
        if at is not None and abs(at - now) < LIVE_INTERVAL_S:  # (else the clock jumped: take its time)
            now = at
        spec = self.specs.current()
        if spec is None:
            return []
        rules = self._rules(spec)
        if self.states is None:
            self.states = {(d["rule"], d["env"]): AlertState.from_json(d) for d in self.store.alert_states()}
        by_env: dict[str, list[Rule]] = {}
        for r in rules:
            by_env.setdefault(r.env, []).append(r)
        changed: list[AlertState] = []
        transitions: list[tuple[Rule, AlertState, str]] = []
        if reread or any(env not in self._read for env in by_env):
            self._read = {env: self._read_env(spec, env, env_rules, now) for env, env_rules in by_env.items()}
            self._read_at = now
        for env, env_rules in by_env.items():
            points, backups = self._read[env]
            live = self.live.window(env, now) if self.live is not None else None
            windows = {window_of(r.expr) for r in env_rules if r.expr.series in WINDOWED}
            quantiles = {window_of(r.expr) for r in env_rules if r.expr.series in QUANTILES}
            values = env_values(points, now, live, windows, quantiles)
            values.update(self.extra.values(spec, env, env_rules, now))
            for r in env_rules:
                prev = self.states.get(r.key)
                value = values.get(r.expr.text) if r.expr.promql is not None else value_of(r.expr, values, backups, now)
                new, change = step(r, prev, value, now)
                self.states[r.key] = new
                if prev is None or not prev.same_but_value(new):
                    changed.append(new)
                if change is not None:
                    transitions.append((r, new, change))
        keys = {r.key for r in rules}
        gone = [k for k in self.states if k not in keys]
        for k in gone:
            del self.states[k]
        events = [{"env": s.env, "kind": f"alert_{change}", "at": now,
                   "message": f"{r.name} {change}: {r.render(s.value)}",
                   "data": {"alertname": r.name, "severity": r.severity, "expr": r.expr.text, "value": s.value,
                            "state": s.state, "runbook_url": r.runbook_url}}
                  for r, s, change in transitions]
        notify = None
        if self.notifier is not None:
            firing = [alert_of(r, self.states[r.key]) for r in rules if self.states[r.key].state == "firing"]
            notify = self.notifier.plan(firing, now)
        self.store.save_alert_states([s.to_json() for s in changed], events, notify)
        if self.notifier is not None and notify is not None:
            self.notifier.committed(notify)
        if gone:
            self.store.delete_alert_states(gone)
        self.evaluations += 1
        return transitions

    def _read_env(self, spec: Spec, env: str, rules: list[Rule], now: float
                  ) -> tuple[list[Point], BackupFacts | None]:
        needs_backups = any(r.expr.series in BACKUP_SERIES for r in rules)
        backups = self._backups(env) if needs_backups and spec.env(env).backup is not None else None
        # Histograms are needed for the quantiles of the windows read from the history only (decoding them is
        # most of a read); restarts look back 10 minutes.
        windows = [window_of(r.expr) for r in rules if r.expr.series in WINDOWED]
        longest = max(windows, default=0)
        from_history = max((w for w in windows if self.live is None or w > LIVE_S), default=None)
        hist_since = now if from_history is None else now - from_history - 2 * RAW_STEP
        rows = self.store.read_points("raw", env, now - max(RESTARTS_WINDOW_S, longest) - RAW_STEP,
                                      hist_since=hist_since)
        return [Point(step=RAW_STEP, **row) for row in rows], backups

    def _backups(self, env: str) -> BackupFacts:
        runs = self.store.list_backup_runs(env, limit=200)
        last_ok: dict[str, float | None] = {}
        failed: dict[str, bool] = {}
        for r in sorted(runs, key=lambda r: r.id):  # oldest first: the newest run of a source wins
            if r.source == "*":  # a scheduled job that failed or was missed as a whole
                failed["*"] = r.status != "ok"
                continue
            failed[r.source] = r.status != "ok"
            if r.status == "ok":
                last_ok[r.source] = r.finished_at or r.started_at
                failed["*"] = False
            else:
                last_ok.setdefault(r.source, None)
        drills = self.store.list_drills(env, limit=1)
        return BackupFacts(last_ok, failed, drill_missed=bool(drills) and not drills[0].ok)
