"""cancelflow's worker: the Celery app (``celery -A worker``), domain, providers and ledger.

The Celery app is built on first access, so importing ``worker.domain`` builds nothing.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from worker.celery_app import app

        return app
    raise AttributeError(name)
