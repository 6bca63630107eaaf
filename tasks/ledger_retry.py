"""How a task retries ledger errors: the one definition, and the decorator every such task uses.

A ledger error (locked, unreachable, a lost connection) is retried by Celery with exponential
backoff and full jitter, the countdown capped here. The cap stays below the broker's visibility
timeout (never under 70 s, see Settings.broker_visibility_timeout): a retry waits in the worker,
unacknowledged, for its countdown, and Redis would hand a longer wait to a second worker.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from worker.celery_app import app
from worker.group_commit import GroupTimeout

LEDGER_RETRY_MAX_SECONDS = 60
LEDGER_RETRY: dict[str, Any] = {
    # GroupTimeout: a ledger write shared with other tasks did not end in time.
    "autoretry_for": (OperationalError, GroupTimeout),
    "retry_backoff": True,
    "retry_backoff_max": LEDGER_RETRY_MAX_SECONDS,
    "retry_jitter": True,
    "max_retries": None,
}


def ledger_task(**options: Any) -> Any:
    """``app.task(**options)`` plus the ledger retry options (a clash is a TypeError)."""
    return app.task(**options, **LEDGER_RETRY)
