"""Outcomes (issue 17): one attempt at an owed webhook or reply message."""

from __future__ import annotations

from tasks.ledger_retry import ledger_task
from worker.bootstrap import process_context
from worker.outcome_channels import process_sender
from worker.services.outcomes import deliver_outcome as deliver
from worker.task_names import DELIVER_OUTCOME


@ledger_task(name=DELIVER_OUTCOME)
def deliver_outcome(delivery_id: str) -> float | None:
    """Send it if due and ours; a failed try is dispatched again after its backoff."""
    ctx = process_context()
    countdown = deliver(ctx, process_sender(), delivery_id)
    if countdown is not None:
        ctx.dispatcher.deliver_outcome(delivery_id, countdown)
    return countdown
