"""``cancellations.submit``: the one task producers call."""

from __future__ import annotations

from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from worker.bootstrap import process_context
from worker.celery_app import SUBMIT_QUEUE, app
from worker.services.submit import submit as submit_job


@app.task(
    bind=True,
    name="cancellations.submit",
    queue=SUBMIT_QUEUE,
    # Producers in other languages send what they send: the arguments are checked by the use
    # case, which keeps a bad call as an invalid job instead of failing the task.
    typing=False,
    Request="tasks.requests:DigestingRequest",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=None,
)
def submit(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Store the producer's cancellation request as a job and dispatch its legs."""
    result = submit_job(
        process_context(), args, kwargs, getattr(self.request, "body_sha256", None)
    )
    return {"job_id": result.job_id, "created": result.created, "state": result.state.value}
