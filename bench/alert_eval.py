"""What alerting costs the control plane: 10 environments × 20 rules, evaluated every 5 s.

    .venv/bin/python bench/alert_eval.py [--envs 10] [--evaluations 60] [--postgres]

A real state database holds 15 minutes of history per environment (two instances each, written by the
real recorder from synthetic router replies on a test clock). Then, on that clock, the real evaluator
runs ``--evaluations`` times and the recorder ticks every 10 s; the process CPU time of each is measured
(``time.process_time``, the synthetic replies generated beforehand and not counted) and given as a
share of one core at the control plane's intervals (evaluation every 5 s, recording every 10 s).
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
    ap.add_argument("--evaluations", type=int, default=60)
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
    ev = Evaluator(store=store, clock=clock, specs=watch)

    def pregenerate(seconds: int) -> None:
        now = int(clock.time())
        for i in router.instances:
            for s in range(now - 900, now + seconds):
                router.second(i, s)

    clock.advance(900)
    pregenerate(0)
    asyncio.run(rec.tick())  # 15 minutes of history for every environment
    ev.evaluate()  # loads the rules and creates every state once
    rules = len(ev.rules)
    eval_cpu: list[float] = []
    tick_cpu: list[float] = []

    async def run() -> None:
        for k in range(args.evaluations):
            clock.advance(EVAL_INTERVAL_S)
            if k % 2:
                pregenerate(0)
                t0 = time.process_time()
                await rec.tick()
                tick_cpu.append(time.process_time() - t0)
            t0 = time.process_time()
            ev.evaluate()
            eval_cpu.append(time.process_time() - t0)

    asyncio.run(run())
    e_med, t_med = statistics.median(eval_cpu), statistics.median(tick_cpu)
    print(f"# {platform.python_version()} {platform.machine()}, {'PostgreSQL' if args.postgres else 'SQLite'}: "
          f"{args.envs} environments, {rules} rules ({rules // args.envs} each; {len(DEFAULTS)} defaults)")
    print(f"evaluation of every rule: median {e_med * 1000:.1f} ms CPU, max {max(eval_cpu) * 1000:.1f} ms "
          f"→ {e_med / EVAL_INTERVAL_S * 100:.2f} % of a core at one evaluation per {EVAL_INTERVAL_S:g} s")
    print(f"recorder tick ({args.envs} envs): median {t_med * 1000:.1f} ms CPU "
          f"→ {t_med / RAW_STEP * 100:.2f} % of a core at one tick per {RAW_STEP} s")
    print(f"together: {(e_med / EVAL_INTERVAL_S + t_med / RAW_STEP) * 100:.2f} % of one core")
    store.close()
    if cluster is not None:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
