"""Synthetic router traffic for the history and alerting tests (and bench/history_growth.py).

``SyntheticRouter`` answers the ``slices`` op as the router does — finished seconds ``[since, now_sec)``
per instance, from a clock the test moves — with deterministic traffic: every second's requests, 5xx
answers and latency buckets come from a seeded generator keyed by (instance, second), so ``expected``
recomputes exactly what any second held. This is a fake of the router's reply shape only; the recorder,
the store (real SQLite / PostgreSQL) and the queries under test are the real ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from shipyard.primitives.clock import Clock
from shipyard.primitives.metrics import RETENTION_S, bucket_index


@dataclass
class SyntheticRouter:
    clock: Clock
    instances: dict[str, str] = field(default_factory=lambda: {"svc-1": "r1", "svc-2": "r1"})
    rps: int = 20  # per instance
    error_share: float = 0.01
    calls: int = 0
    # As the real router: a second, once served, keeps what it held when the traffic changes later (off: a
    # second is generated again from the current rps / error_share each time it is asked for).
    keep: bool = False
    kept: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def second(self, inst: str, sec: int) -> dict[str, Any]:
        if self.keep:
            if (inst, sec) not in self.kept:
                self.kept[inst, sec] = self._second(inst, sec)
            return self.kept[inst, sec]
        return self._second(inst, sec)

    def _second(self, inst: str, sec: int) -> dict[str, Any]:
        rng = random.Random(f"{inst}:{sec}")
        n = rng.randint(self.rps // 2, self.rps * 3 // 2)
        errors = sum(1 for _ in range(n) if rng.random() < self.error_share)
        hist: dict[int, int] = {}
        for _ in range(n):
            b = bucket_index(rng.lognormvariate(-3.5, 0.6))  # median ~30 ms, a long right tail
            hist[b] = hist.get(b, 0) + 1
        return {"sec": sec, "status": [0, 0, n - errors, 0, 0, errors], "upstream_errors": 0, "retried": 0,
                "histogram": sorted(hist.items())}

    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        assert op == "slices", op
        self.calls += 1
        now_sec = int(self.clock.time())
        since = fields.get("since")
        since = now_sec - 1 if not isinstance(since, int) else max(since, now_sec - RETENTION_S)
        return {"env": fields["env"], "since": since, "now_sec": now_sec, "instances": [
            {"id": i, "release": r, "ready": True, "retired": False,
             "slices": [self.second(i, s) for s in range(since, now_sec)]} for i, r in self.instances.items()]}
