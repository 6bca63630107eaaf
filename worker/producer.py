"""Publishing the producer message, as any Celery-protocol producer would."""

from __future__ import annotations

from typing import Any

from celery import Celery

from worker.domain.request import job_id_for_key
from worker.task_names import SUBMIT_QUEUE, SUBMIT_TASK

__all__ = ["SUBMIT_TASK", "publish"]


def publish(app: Celery, request: Any, *, task_id: str | None = None) -> str | None:
    """Send ``cancellations.submit`` with ``kwargs={"request": request}``.

    Returns the job id when the request carries a usable idempotency key.
    """
    app.send_task(
        SUBMIT_TASK,
        kwargs={"request": request},
        queue=SUBMIT_QUEUE,
        serializer="json",
        task_id=task_id,
    )
    key = request.get("idempotency_key") if isinstance(request, dict) else None
    return str(job_id_for_key(key)) if isinstance(key, str) and 1 <= len(key) <= 200 else None
