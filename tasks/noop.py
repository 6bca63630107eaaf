"""``cancelflow.noop``: a task that only counts itself, for the benchmarks' ceiling.

It runs on the same broker with the same worker settings as the real tasks, so its drain rate is
what one task per job could at best achieve.
"""

from __future__ import annotations

import redis

from worker.celery_app import app
from worker.settings import load_settings
from worker.task_names import NOOP

_client: redis.Redis | None = None


@app.task(name=NOOP)
def noop(counter: str) -> None:
    """Count one run under ``counter`` in Redis."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(load_settings().redis_url)
    _client.incr(counter)
