"""Celery tasks of the example: each run is counted in Redis, so a test can tell "exactly once" apart.

REDIS_URL (set by the `cache = { kind = "redis" }` accessory, or by hand) is both the broker and where
the counts go: `processed` (task id → runs), `done_by` (task id → release), `finished` (task id → time).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RELEASE = os.environ.get("SHIPYARD_RELEASE", "-")

app = Celery("tasks", broker=URL)
app.conf.update(
    task_default_queue="default",
    worker_prefetch_multiplier=1,   # one message at a time: nothing sits prefetched in a stopping worker
    task_acks_late=False,           # acked as it starts; a warm shutdown lets a running task finish
    broker_connection_retry_on_startup=True,
)
store = redis.Redis.from_url(URL)


@app.task(name="tasks.record")
def record(task_id: str, seconds: float = 0.0) -> str:
    store.hset("started", task_id, time.time())
    if seconds:
        time.sleep(seconds)
    with store.pipeline() as p:
        p.hincrby("processed", task_id, 1)
        p.hset("done_by", task_id, RELEASE)
        p.hset("finished", task_id, time.time())
        p.execute()
    return task_id
