"""What the generator observed, kept as it happens: pure bookkeeping, times relative to the run's start.

Two latencies per response: from the *scheduled* time (what a user arriving then would wait: the open
model, no coordinated omission) and from the *sent* time (what a closed-loop tool such as wrk reports).
Only requests scheduled after the ramp count towards the verdict; the per-second series covers all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.primitives.metrics import Histogram

# A request sent this much after its scheduled time counts as late (the generator fell behind).
LATE_AFTER = 0.010


@dataclass
class Second:
    requests: int = 0
    failed: int = 0
    hist: Histogram = field(default_factory=Histogram)


class LoadRecorder:
    """The load generator's bookkeeping: latencies (seconds) in the one histogram, counts, lag."""

    def __init__(self, n_scenarios: int, steady_from: float) -> None:
        self.steady_from = steady_from
        self.latency = Histogram()  # from scheduled time, steady phase
        self.service = Histogram()  # from sent time, steady phase
        self.seconds: list[Second] = []
        self.sent = 0  # steady-phase requests written to a connection
        self.completed = 0  # steady-phase requests with an outcome (response or error)
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.dropped = 0
        self.late = 0
        self.max_lag = 0.0
        self.first_sent = -1.0
        self.last_sent = 0.0
        self.by_scenario = [[0, 0] for _ in range(n_scenarios)]  # [requests, failed]

    def _second(self, t: float) -> Second:
        sec = int(t) if t > 0 else 0
        seconds = self.seconds
        while len(seconds) <= sec:
            seconds.append(Second())
        return seconds[sec]

    def on_sent(self, sched: float, sent: float) -> None:
        lag = sent - sched
        if lag > self.max_lag:
            self.max_lag = lag
        if lag > LATE_AFTER:
            self.late += 1
        if sched >= self.steady_from:
            self.sent += 1
            if self.first_sent < 0:
                self.first_sent = sent
            self.last_sent = sent

    def on_response(self, sched: float, sent: float, done: float, status: int, ok: bool, scenario: int) -> None:
        latency = done - sched
        sec = self._second(done)
        sec.requests += 1
        sec.hist.record(latency)
        if not ok:
            sec.failed += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if sched >= self.steady_from:
            self.completed += 1
            self.latency.record(latency)
            self.service.record(done - sent)
            counts = self.by_scenario[scenario]
            counts[0] += 1
            if not ok:
                self.failed += 1
                counts[1] += 1

    def on_error(self, sched: float, done: float, kind: str, scenario: int, sent: float | None) -> None:
        """A request that got no (complete) response: connection refused/reset, timeout, bad response.

        Timeouts and resets still enter the latency histogram: hiding them would flatter a stalling server.
        """
        sec = self._second(done)
        sec.requests += 1
        sec.failed += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if sched >= self.steady_from:
            self.completed += 1
            self.failed += 1
            counts = self.by_scenario[scenario]
            counts[0] += 1
            counts[1] += 1
            if sent is not None:
                self.latency.record(done - sched)
                self.service.record(done - sent)

    def on_dropped(self, sched: float) -> None:
        if sched >= self.steady_from:
            self.dropped += 1
