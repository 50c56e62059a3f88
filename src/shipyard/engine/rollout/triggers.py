"""Rollback triggers evaluated live, once a second, on one release: sample conditions over a metric
source, and PromQL conditions from periodic queries (run in a thread, never on the event loop)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from shipyard.engine.analysis.conditions import (
    Condition,
    Evaluation,
    Reading,
    evaluate_all,
    evaluate_prometheus,
)
from shipyard.engine.analysis.prometheus import read_condition
from shipyard.engine.rollout.target import MetricSource
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock

log = logging.getLogger("shipyard.rollout")

PROMETHEUS_EVERY_S = 5.0
ReadCondition = Callable[[Condition, float], Reading]


class Triggers:
    def __init__(self, conditions: Sequence[Condition], clock: Clock, read: ReadCondition = read_condition) -> None:
        self.sample_conditions = [c for c in conditions if c.kind != "prometheus"]
        self.prom_conditions = [c for c in conditions if c.kind == "prometheus"]
        self.clock = clock
        self._read = read
        self.readings: dict[Condition, list[Reading]] = {c: [] for c in self.prom_conditions}
        self._last_query = 0.0
        self._querying: asyncio.Task[None] | None = None

    def evaluate(self, source: MetricSource, release: str, since: int,
                 extra: Sequence[Condition] = ()) -> list[Evaluation]:
        """Every condition on ``release`` at the source's newest second, looking only at samples from
        ``since`` on (data from before the rollout or the promotion does not count)."""
        if source.end is None:
            return []
        out = evaluate_all([*self.sample_conditions, *extra], source.since(since), source.end, releases=[release])
        self._maybe_query()
        now = self.clock.time()
        for cond, readings in self.readings.items():
            out.append(evaluate_prometheus(cond, readings, now))
        return out

    def firing(self, source: MetricSource, release: str, since: int,
               extra: Sequence[Condition] = ()) -> list[Evaluation]:
        return [e for e in self.evaluate(source, release, since, extra) if e.firing]

    def _maybe_query(self) -> None:
        if not self.prom_conditions or (self._querying is not None and not self._querying.done()):
            return
        if self.clock.monotonic() - self._last_query < PROMETHEUS_EVERY_S:
            return
        self._last_query = self.clock.monotonic()
        self._querying = asyncio.get_running_loop().create_task(self._query())

    async def _query(self) -> None:
        for cond in self.prom_conditions:
            at = self.clock.time()
            try:
                reading = await asyncio.to_thread(self._read, cond, at)
            except (ShipyardError, OSError) as err:
                # No reading is "no data": the condition cannot fire on a Prometheus that is down.
                log.warning("prometheus trigger %s: %s", cond.query, err)
                continue
            kept = [r for r in self.readings[cond] if r.t >= at - cond.for_s - 60]
            self.readings[cond] = [*kept, reading]

    def cancel(self) -> None:
        if self._querying is not None:
            self._querying.cancel()
