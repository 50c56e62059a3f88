"""How much the metric history grows: one environment, 24 h of synthetic traffic on a test clock.

    .venv/bin/python bench/history_growth.py [--instances 2] [--releases 1] [--rps 20] [--postgres]

The real recorder writes into a real state database (SQLite; ``--postgres``: a throwaway PostgreSQL
cluster) every 10 test-clock seconds from synthetic router replies (tests/alerting/synthetic.py: ~30 ms
median latency with a long tail, so a 10-second histogram holds a realistic number of buckets). Prints
the bytes one day adds at each resolution and the steady state at the default retention (24 h raw,
90 d minute).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "alerting"))
sys.path.insert(0, str(ROOT / "src"))

from synthetic import SyntheticRouter  # noqa: E402

from shipyard.control.metrics_recorder import Recorder  # noqa: E402
from shipyard.control.specwatch import SpecWatch  # noqa: E402
from shipyard.engine.alerting.history import InstanceReading  # noqa: E402
from shipyard.primitives.clock import ManualClock  # noqa: E402
from shipyard.primitives.store import open_store  # noqa: E402

DAY = 86_400
T0 = 1_700_006_400


def sqlite_table_bytes(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        out = {}
        for res in ("raw", "minute"):
            n, hist = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(hist)), 0) FROM metric_points "
                                   "WHERE resolution = ?", (res,)).fetchone()
            out[f"{res}_rows"], out[f"{res}_hist_bytes"] = n, hist
        try:
            out["table_bytes"] = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                                              "('metric_points', 'ix_metric_points_env_t', "
                                              "'sqlite_autoindex_metric_points_1')").fetchone()[0]
        except sqlite3.OperationalError:  # no dbstat in this SQLite build
            out["table_bytes"] = db.stat().st_size
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--releases", type=int, default=1)
    ap.add_argument("--rps", type=int, default=20, help="per instance")
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-history-"))
    (tmp / "shipyard.toml").write_text('[app]\nname = "svc"\nrun = "x"\n[app.health]\npath = "/h"\n'
                                       "[environments.prod]\nport = 8300\n")
    cluster = None
    url = None
    if args.postgres:
        from shipyard.primitives.pgcluster import PgCluster

        cluster = PgCluster()
        cluster.init().start()
        url = cluster.create_database("history")
    store = open_store(url, tmp / ".shipyard")
    store.upsert_environment("prod", current_release="r0", updated_at=float(T0))
    clock = ManualClock(float(T0))
    instances = {f"svc-{k}": f"r{k % args.releases}" for k in range(args.instances)}
    router = SyntheticRouter(clock, instances=instances, rps=args.rps)

    def readings(env: str) -> list[InstanceReading]:
        return [InstanceReading(i, r, True, cpu=0.2, rss=60 * 2**20, memory_limit=2**33) for i, r in instances.items()]

    rec = Recorder(link=router, store=store, clock=clock, specs=SpecWatch(tmp), readings=readings)

    async def day() -> None:
        for _ in range(DAY // 10):
            clock.advance(10)
            await rec.tick()

    t0 = time.process_time()
    asyncio.run(day())
    cpu = time.process_time() - t0
    print(f"# {platform.python_version()} {platform.machine()}, {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"{args.instances} instances, {args.releases} release(s), ~{args.rps} req/s each")
    print(f"recorder CPU for the day (incl. the synthetic generator): {cpu:.1f} s; {rec.ticks} ticks")
    if args.postgres:
        import sqlalchemy as sa

        assert url is not None
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            total = conn.execute(sa.text("SELECT pg_total_relation_size('metric_points')")).scalar()
            rows = dict(conn.execute(sa.text("SELECT resolution, COUNT(*) FROM metric_points GROUP BY 1")).all())
        engine.dispose()
        print(f"metric_points after 24 h: {total / 2**20:.2f} MiB ({rows})")
    else:
        full = sqlite_table_bytes(tmp / ".shipyard" / "state.db")
        with sqlite3.connect(tmp / ".shipyard" / "state.db") as conn:
            conn.execute("DELETE FROM metric_points WHERE resolution = 'raw'")
        minute = sqlite_table_bytes(tmp / ".shipyard" / "state.db")
        raw_day = full["table_bytes"] - minute["table_bytes"]
        minute_day = minute["table_bytes"]
        print(f"raw points, one day: {full['raw_rows']} rows, {raw_day / 2**20:.2f} MiB "
              f"(histograms {full['raw_hist_bytes'] / 2**20:.2f} MiB)")
        print(f"minute points, one day: {full['minute_rows']} rows, {minute_day / 2**20:.3f} MiB")
        steady = raw_day + 90 * minute_day
        print(f"steady state at 24 h raw + 90 d minute: {steady / 2**20:.1f} MiB per environment")
    store.close()
    if cluster is not None:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
