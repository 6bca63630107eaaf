"""``cancellations.submit``: the one task producers call; and the filing of refused messages.

Under load many submit tasks run at once (one per worker thread), and each would make two ledger
transactions of its own: storing its job, then recording its first round. They share them
instead (``worker/group_commit.py``): the tasks storing a job within the same few milliseconds
store them in one transaction, and each task's message is still acknowledged only after that
commit (late acks), so a killed worker loses nothing it had not yet stored, as before; the
provider calls stay one per task thread, concurrent as before; the rounds that end together are
recorded in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Task, signals

from tasks.ledger_retry import ledger_task
from worker.bootstrap import process_context
from worker.group_commit import GroupCommit
from worker.services.legs import LegStep, record_results
from worker.services.rounds import RoundResult
from worker.services.submit import Accepted, Message, accept, carry_out, store_invalid
from worker.task_names import FILE_INVALID, SUBMIT_TASK

log = logging.getLogger(__name__)

# How long the first task to arrive waits for others before writing a group: short beside a
# provider's answer (tens to hundreds of milliseconds), long beside a transaction.
GROUP_WINDOW_SECONDS = 0.005
# At most one group per worker's threads (worker_concurrency) of jobs, and of legs twice that.
GROUP_MAX_JOBS = 32
GROUP_MAX_RESULTS = 64
# A task waits at most this long for its group to be written (it then writes its own, or
# retries as on a ledger error): longer than SQLite's own busy timeout (60 s), so a task gives up
# only on a ledger that is stuck, and well under the broker's visibility timeout (410 s).
GROUP_WAIT_SECONDS = 90.0


def _accept(messages: list[Message]) -> list[Accepted]:
    return accept(process_context(), messages)


def _record(results: list[RoundResult]) -> list[LegStep]:
    return record_results(process_context(), results)


accepting: GroupCommit[Message, Accepted] = GroupCommit(
    _accept, window=GROUP_WINDOW_SECONDS, max_items=GROUP_MAX_JOBS,
    wait_seconds=GROUP_WAIT_SECONDS)
recording: GroupCommit[RoundResult, LegStep] = GroupCommit(
    _record, window=GROUP_WINDOW_SECONDS, max_items=GROUP_MAX_RESULTS,
    wait_seconds=GROUP_WAIT_SECONDS)


@signals.worker_shutdown.connect
def _report_groups(**_: Any) -> None:
    """How much the groups shared, for whoever reads the worker's log."""
    for what, group in (("jobs stored", accepting), ("first rounds recorded", recording)):
        if group.groups:
            log.info("submit: %d %s in %d transactions (%.1f a transaction)",
                     group.items, what, group.groups, group.items / group.groups)


def _record_grouped(results: Sequence[RoundResult]) -> list[LegStep]:
    return recording.run(results)


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
    return run_submit(Message(args, kwargs, getattr(self.request, "body_sha256", None)))


def run_submit(message: Message) -> dict[str, Any]:
    """The submit use case on one message, its ledger writes shared with the other threads'
    (the task's body, and what the batch intake runs: tasks/batch_intake.py)."""
    accepted = accepting.run([message])[0]
    carry_out(process_context(), accepted, _record_grouped)
    result = accepted.submitted
    return {"job_id": result.job_id, "created": result.created, "state": result.state.value}


@ledger_task(name=FILE_INVALID)
def file_invalid(body_sha256: str, idempotency_key: str | None,
                 errors: list[dict[str, str]]) -> str:
    """Keep a producer message the worker's consumer refused as an ``invalid`` job."""
    return store_invalid(process_context(), idempotency_key, errors, body_sha256).job_id
