"""Internal tasks for one leg: a provider round, and a later evidence read."""

from __future__ import annotations

from celery import Task

from tasks.ledger_retry import ledger_task
from worker.bootstrap import process_context
from worker.celery_app import app
from worker.services.callbacks import settle_for_page, settle_leg
from worker.services.legs import process_leg as process_leg_round
from worker.services.legs import process_legs as process_legs_round
from worker.services.legs import refresh_evidence
from worker.services.recovery import recover_leg
from worker.task_names import (
    PAGE_ARRIVED,
    PROCESS_LEG,
    PROCESS_LEGS,
    READ_EVIDENCE,
    RECOVER_CALLBACKS,
    SETTLE_CALLBACKS,
)


@ledger_task(bind=True, name=PROCESS_LEG)
def process_leg(self: Task, leg_id: str) -> str | None:
    """Run one round for the leg; a transient failure comes back as a Celery retry."""
    step = process_leg_round(process_context(), leg_id)
    if step.retry_in is not None:
        raise self.retry(countdown=step.retry_in, max_retries=None)
    return step.state.value if step.state else None


@ledger_task(name=PROCESS_LEGS)
def process_legs(leg_ids: list[str]) -> dict[str, int]:
    """A round for a batch of legs, run concurrently; retries come back one leg at a time."""
    steps = process_legs_round(process_context(), leg_ids)
    counts: dict[str, int] = {}
    for step in steps:
        key = step.state.value if step.state else "skipped"
        counts[key] = counts.get(key, 0) + 1
    return counts


@app.task(name=READ_EVIDENCE)
def read_evidence(leg_id: str) -> bool:
    """Read a cancelled leg's figures again for reconciliation."""
    return refresh_evidence(process_context(), leg_id)


@ledger_task(name=SETTLE_CALLBACKS)
def settle_callbacks(leg_id: str) -> str | None:
    """End a leg waiting on callbacks if all its pages are in."""
    state = settle_leg(process_context(), leg_id)
    return state.value if state else None


@ledger_task(name=PAGE_ARRIVED)
def page_arrived(bulk_payment_id: str, code: str) -> int:
    """A callback page was stored: settle the legs it may complete."""
    return settle_for_page(process_context(), bulk_payment_id, code)


@ledger_task(name=RECOVER_CALLBACKS)
def recover_callbacks(leg_id: str) -> str | None:
    """The next stage of lost-callback recovery, if due."""
    return recover_leg(process_context(), leg_id)
