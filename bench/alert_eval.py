"""What alerting costs the control plane: 10 environments × 20 rules, evaluated every second.

    .venv/bin/python bench/alert_eval.py [--envs 10] [--seconds 120] [--postgres]

A real state database holds 15 minutes of history per environment (two instances each, written by the
real recorder from synthetic router replies on a test clock). Then, on that clock, the daemon's cadence
runs for ``--seconds``: every second the evaluator pulls each environment's new per-second slices
(``LiveTraffic``, the rate windows) and evaluates every rule; after each recorder tick (every 10 s) and
at least every 5 s that evaluation also re-reads the history and backups. The process CPU time
(``time.process_time``; the synthetic replies generated beforehand and not counted, and no JSON decoding
of the router's replies, which the real control plane also does) of each kind of evaluation and of the
recorder tick is measured and given as a share of one core at those intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "alerting"))
sys.path.insert(0, str(ROOT / "src"))

from synthetic import SyntheticRouter  # noqa: E402

from shipyard.control.alerts import EVAL_INTERVAL_S, Evaluator  # noqa: E402
from shipyard.control.collector import LiveTraffic  # noqa: E402
from shipyard.control.metrics_recorder import Recorder  # noqa: E402
from shipyard.control.specwatch import SpecWatch  # noqa: E402
from shipyard.engine.alerting.history import RAW_STEP, InstanceReading  # noqa: E402
from shipyard.engine.alerting.rules import DEFAULTS  # noqa: E402
from shipyard.primitives.clock import ManualClock  # noqa: E402
from shipyard.primitives.store import open_store  # noqa: E402

T0 = 1_700_006_400
EXTRA_RULES = [  # 13 rules besides the 7 defaults: 20 per environment
    ("ErrorsFast", "error_rate > 20%", "1m"), ("ErrorsSlow", "error_rate > 2%", "15m"),
    ("Availability", "availability < 99%", "5m"), ("P50", "p50 > 500ms", "5m"), ("P99", "p99 > 5s", "5m"),
    ("P95Fast", "p95 > 5s", "1m"), ("NoTraffic", "rps < 1", "10m"), ("TrafficSpike", "rps > 10000", "1m"),
    ("Cpu", "cpu > 90%", "5m"), ("MemoryHigh", "memory > 95%", "1m"), ("Restarts", "restarts > 3", "0s"),
    ("Health", "health_failures >= 3", "1m"), ("DbBackupOld", 'backup_age{source="db"} > 26h', "0s"),
]


class CachedRouter(SyntheticRouter):
    cache: dict[tuple[str, int], dict[str, Any]]

    def second(self, inst: str, sec: int) -> dict[str, Any]:
        key = (inst, sec)
        if key not in self.cache:
            self.cache[key] = super().second(inst, sec)
        return self.cache[key]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-alerts-"))
    envs = [f"env{k}" for k in range(args.envs)]
    spec = '[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\n'
    spec += "".join(f"[environments.{e}]\nport = {8300 + k}\n" for k, e in enumerate(envs))
    spec += "".join(f'[[alerts]]\nname = "{n}"\nexpr = \'{x}\'\nfor = "{f}"\n' for n, x, f in EXTRA_RULES)
    (tmp / "shipyard.toml").write_text(spec)
    cluster = None
    url = None
    if args.postgres:
        from shipyard.primitives.pgcluster import PgCluster

        cluster = PgCluster()
        cluster.init().start()
        url = cluster.create_database("alerts")
    store = open_store(url, tmp / ".shipyard")
    for e in envs:
        store.upsert_environment(e, current_release="r1", updated_at=float(T0))
    clock = ManualClock(float(T0))
    router = CachedRouter(clock)
    router.cache = {}
    watch = SpecWatch(tmp)

    def readings(env: str) -> list[InstanceReading]:
        return [InstanceReading(i, r, True, cpu=0.2, rss=60 * 2**20, memory_limit=2**33) for i, r in router.instances.items()]

    rec = Recorder(link=router, store=store, clock=clock, specs=watch, readings=readings)
    ev = Evaluator(store=store, clock=clock, specs=watch, live=LiveTraffic(router, clock))

    def pregenerate(seconds: int) -> None:
        now = int(clock.time())
        for i in router.instances:
            for s in range(now - 900, now + seconds):
                router.second(i, s)

    clock.advance(900)
    pregenerate(args.seconds + 2)
    asyncio.run(rec.tick())  # 15 minutes of history for every environment
    asyncio.run(ev.once())  # loads the rules and creates every state once (and fills the live windows)
    rules = len(ev.rules)
    light_cpu: list[float] = []  # pull + evaluation with the last history read
    reread_cpu: list[float] = []  # pull + evaluation that re-reads the history and backups
    tick_cpu: list[float] = []

    async def run() -> None:
        read_at = clock.time()
        for _ in range(args.seconds):
            clock.advance(1)
            ticked = int(clock.time()) % RAW_STEP == 0
            if ticked:
                t0 = time.process_time()
                await rec.tick()
                tick_cpu.append(time.process_time() - t0)
            reread = ticked or clock.time() - read_at >= EVAL_INTERVAL_S
            read_at = clock.time() if reread else read_at
            t0 = time.process_time()
            await ev.once(reread)
            (reread_cpu if reread else light_cpu).append(time.process_time() - t0)

    asyncio.run(run())
    light, heavy, t_med = (statistics.median(x) for x in (light_cpu, reread_cpu, tick_cpu))
    per_s = (len(reread_cpu) * heavy + len(light_cpu) * light) / args.seconds
    print(f"# {platform.python_version()} {platform.machine()}, {'PostgreSQL' if args.postgres else 'SQLite'}: "
          f"{args.envs} environments, {rules} rules ({rules // args.envs} each; {len(DEFAULTS)} defaults), "
          f"{args.seconds} s of the daemon's cadence")
    print(f"evaluation with live traffic only: median {light * 1000:.1f} ms CPU, max {max(light_cpu) * 1000:.1f} ms "
          f"({len(light_cpu)}×)")
    print(f"evaluation re-reading the history: median {heavy * 1000:.1f} ms CPU, max {max(reread_cpu) * 1000:.1f} ms "
          f"({len(reread_cpu)}×)")
    print(f"evaluator: {per_s * 100:.2f} % of a core at one evaluation per second")
    print(f"recorder tick ({args.envs} envs): median {t_med * 1000:.1f} ms CPU "
          f"→ {t_med / RAW_STEP * 100:.2f} % of a core at one tick per {RAW_STEP} s")
    print(f"together: {(per_s + t_med / RAW_STEP) * 100:.2f} % of one core")
    store.close()
    if cluster is not None:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
