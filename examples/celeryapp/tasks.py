"""Celery tasks of the example: each run is counted in Redis, so a test can tell "exactly once" apart.

REDIS_URL (set by the `cache = { kind = "redis" }` accessory, or by hand) is both the broker and where
the counts go: `processed` (task id → runs), `done_by` (task id → release), `finished` (task id → time).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery
from celery.worker import state as worker_state

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
def record(task_id: str, seconds: float = 0.0, until_shutdown: bool = False) -> str:
    """Count one run of ``task_id`` after ``seconds`` of work; ``until_shutdown``: the work ends once the
    worker is asked to stop (a warm shutdown lets it finish), or after ``seconds``."""
    store.hset("started", task_id, time.time())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until_shutdown and worker_state.should_stop is not None:
            store.hset("saw_shutdown", task_id, time.time())
            time.sleep(1.0)  # the rest of its work, inside the worker's grace
            break
        time.sleep(0.05)
    with store.pipeline() as p:
        p.hincrby("processed", task_id, 1)
        p.hset("done_by", task_id, RELEASE)
        p.hset("finished", task_id, time.time())
        p.execute()
    return task_id
