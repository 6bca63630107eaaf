"""A worker told to stop while its batch intake runs submit calls (tasks/batch_intake.py): the
messages of the runs not ended go back to the queue. A module of its own: its worker must be the
only one on its Redis database."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from sandbox import create_app, start_in_thread
from tasks.batch_intake import SHUTDOWN_WAIT_SECONDS, UNACKED
from tests.support import wait_for_job
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.producer import publish
from worker.task_names import SUBMIT_QUEUE

pytestmark = pytest.mark.integration

MERCHANT = "T123456789"


def test_a_warm_shutdown_puts_back_the_messages_of_runs_not_ended(
    tmp_path: Path, redis_url: str
) -> None:
    """SIGTERM while two submit calls wait on a slow provider: past the step's wait their
    messages are back at the head of the queue (not left to the visibility timeout), and the
    next worker ends both jobs with each payment cancelled once."""
    running = start_in_thread(create_app())
    sandbox = SandboxControl(running.url)
    stack = Stack.prepare(tmp_path, redis_url=redis_url, sandbox_url=running.url,
                          extra_env={"CANCELFLOW_HTTP_TIMEOUT_SECONDS": "20"})
    client = redis.Redis.from_url(stack.env["CANCELFLOW_REDIS_URL"])
    producer = create_celery(stack.settings())
    engine = create_ledger_engine(stack.settings().database_url)
    try:
        stack.start_worker(concurrency=2)
        references = [f"bi-stop-{uuid.uuid4()}" for _ in range(2)]
        for reference in references:
            sandbox.seed_payment(merchant=MERCHANT, reference=reference, state="Authorized",
                                 amount=1000)
            sandbox.add_fault(provider="bambora", operation="cancel_payment",
                              target=f"{MERCHANT}/{reference}", action="delay",
                              delay_ms=int((SHUTDOWN_WAIT_SECONDS + 3) * 1000))
        job_ids = [publish(producer, {"idempotency_key": f"bi-{uuid.uuid4()}", "legs": [
            {"provider": "bambora", "merchant": MERCHANT, "payment_reference": reference}]})
            for reference in references]
        wait_until(lambda: len(sandbox.calls(provider="bambora")) >= 2
                   and client.hlen(UNACKED) == 2, timeout=20,
                   what="both calls under way, their messages held by the step")
        stack.stop("worker", timeout=60)
        assert (client.llen(SUBMIT_QUEUE), client.hlen(UNACKED)) == (2, 0)

        sandbox.clear_faults()
        stack.start_worker(concurrency=2)
        for job_id in job_ids:
            assert wait_for_job(engine, job_id or "")["state"] == "reconciled"
        assert sandbox.effects("bambora") == {
            f"bambora:cancel_payment:{MERCHANT}/{reference}": 1 for reference in references}
    finally:
        producer.close()
        engine.dispose()
        client.close()
        stack.stop_all()
        sandbox.close()
        running.shutdown()
