"""A worker killed mid-run: every payment still ends cancelled, and cancelled once in effect."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from sandbox import create_app, start_in_thread
from tests.support import wait_for_job
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.producer import publish

pytestmark = pytest.mark.integration

PAYMENTS = 40


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    running = start_in_thread(create_app())
    yield running.url
    running.shutdown()


def test_sigkill_mid_run_cancels_each_payment_exactly_once(
    tmp_path: Path, redis_url: str, sandbox_url: str
) -> None:
    """Given 40 slow payments, SIGKILL the worker group mid-run and restart it: all cancelled,
    and the sandbox saw each payment cancelled exactly once."""
    sandbox = SandboxControl(sandbox_url)
    merchant = f"M{uuid.uuid4().hex[:8]}"
    sandbox.seed_payments(merchant=merchant, count=PAYMENTS, prefix="crash-")
    sandbox.settings(latency_ms=1000)
    stack = Stack.prepare(tmp_path, redis_url=redis_url, sandbox_url=sandbox_url, extra_env={
        "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "2",
        "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
        "CANCELFLOW_RETRY_MAX_SECONDS": "1",
        "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
        # Small batches, so the job runs in waves and the kill lands in the middle.
        "CANCELFLOW_CONCURRENCY_BAMBORA": "4",
    })
    settings = stack.settings()
    engine = create_ledger_engine(settings.database_url)
    producer = create_celery(settings)
    try:
        stack.start_worker(concurrency=2)
        stack.start_beat()
        job_id = publish(producer, {"idempotency_key": f"crash-{uuid.uuid4()}", "legs": [
            {"provider": "bambora", "merchant": merchant, "payment_reference": f"crash-{i}"}
            for i in range(1, PAYMENTS + 1)]})
        assert job_id is not None

        def some_cancelled() -> int | None:
            done = len(sandbox.effects("bambora"))
            return done if done >= 6 else None

        before_kill = wait_until(some_cancelled, timeout=60, what="the first cancels")
        stack.kill("worker")
        assert before_kill < PAYMENTS, "the kill came too late to test anything"
        stack.start_worker(concurrency=2)
        job = wait_for_job(engine, job_id, timeout=120)
        assert job["state"] == "reconciled"
        assert {leg["state"] for leg in job["legs"]} == {"cancelled"}
        effects = sandbox.effects("bambora")
        expected = {f"bambora:cancel_payment:{merchant}/crash-{i}": 1
                    for i in range(1, PAYMENTS + 1)}
        assert effects == expected
    finally:
        producer.close()
        engine.dispose()
        stack.stop_all()
        sandbox.close()
