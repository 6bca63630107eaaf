"""``cancellations.submit``: the one task producers call; and the filing of refused messages."""

from __future__ import annotations

from typing import Any

from celery import Task

from tasks.ledger_retry import ledger_task
from worker.bootstrap import process_context
from worker.services.submit import store_invalid
from worker.services.submit import submit as submit_job
from worker.task_names import FILE_INVALID, SUBMIT_TASK


@ledger_task(
    bind=True,
    name=SUBMIT_TASK,
    # Producers in other languages send what they send: the arguments are checked by the use
    # case, which keeps a bad call as an invalid job instead of failing the task.
    typing=False,
    Request="tasks.requests:DigestingRequest",
)
def submit(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Store the producer's cancellation request as a job and dispatch its legs."""
    result = submit_job(
        process_context(), args, kwargs, getattr(self.request, "body_sha256", None)
    )
    return {"job_id": result.job_id, "created": result.created, "state": result.state.value}


@ledger_task(name=FILE_INVALID)
def file_invalid(body_sha256: str, idempotency_key: str | None,
                 errors: list[dict[str, str]]) -> str:
    """Keep a producer message the worker's consumer refused as an ``invalid`` job."""
    return store_invalid(process_context(), idempotency_key, errors, body_sha256).job_id
