"""Redis stopped (SIGTERM, append-only file on) under a loaded worker, then started again: the
same worker process carries on, every job is reconciled, no payment is cancelled twice.

The outage starts while tasks are running and the worker still asks Redis for more (fewer tasks
than it may hold): the shape that stopped Celery 5.7.0 workers (worker/broker_outage.py).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from devstack.embedded_redis import EmbeddedRedis
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import FINAL_JOB_STATES, job_answer
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import legs
from worker.ledger.views import LedgerReads
from worker.producer import publish

pytestmark = pytest.mark.integration

# Six tasks of 20 slow cancels each: running for seconds, and fewer than the worker's slots
# (at least 8 threads), so that it still asks Redis for more when Redis goes away.
JOBS_BEFORE, JOBS_AFTER, PAYMENTS_PER_JOB = 6, 4, 20
ENV = {
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "2",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
    "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
}


def legs_in_flight(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(legs.c.state == "in_flight"))
                   .scalar_one())


def cancels(sandbox: SandboxControl, merchant: str) -> dict[str, int]:
    """The sandbox's effective cancels of this merchant's payments, by payment."""
    return {key: n for key, n in sandbox.effects("bambora").items() if f":{merchant}/" in key}


@pytest.mark.parametrize("outage_seconds", [5, 30])
def test_worker_outlives_a_redis_outage_under_load(
    outage_seconds: int, tmp_path: Path, sandbox_url: str, sandbox: SandboxControl
) -> None:
    """Given 6 jobs of 20 slow, sometimes failing cancels in flight, Redis stops for the outage
    and starts again: the worker's pid is unchanged, those and 4 more jobs end reconciled, and the
    sandbox saw each payment cancelled exactly once."""
    redis = EmbeddedRedis(tmp_path / "redis").start()
    stack = Stack.prepare(tmp_path / "stack", redis_url=redis.url, sandbox_url=sandbox_url,
                          extra_env=ENV)
    engine = create_ledger_engine(stack.settings().database_url)
    producer = create_celery(stack.settings())
    merchant = f"M{uuid.uuid4().hex[:8]}"
    count = (JOBS_BEFORE + JOBS_AFTER) * PAYMENTS_PER_JOB
    sandbox.seed_payments(merchant=merchant, count=count, prefix="out-")
    sandbox.settings(latency_ms=1000)
    sandbox.add_fault(provider="bambora", operation="cancel_payment", action="status",
                      status=503, probability=0.2, seed=outage_seconds, times=0)
    references = iter(range(1, count + 1))

    def job() -> str:
        legs = [{"provider": "bambora", "merchant": merchant,
                 "payment_reference": f"out-{next(references)}"}
                for _ in range(PAYMENTS_PER_JOB)]
        job_id = publish(producer, {"idempotency_key": f"out-{uuid.uuid4()}", "legs": legs})
        assert job_id is not None
        return job_id

    try:
        stack.start_worker()
        stack.start_beat()
        pid = stack.processes["worker"].pid
        jobs = [job() for _ in range(JOBS_BEFORE)]
        wait_until(lambda: legs_in_flight(engine), timeout=60, what="legs in flight")
        redis.stop()
        assert len(cancels(sandbox, merchant)) < JOBS_BEFORE * PAYMENTS_PER_JOB, \
            "the outage came too late to test anything"
        time.sleep(outage_seconds)  # the outage itself: a duration, not a wait for a condition
        redis.start()
        jobs += [job() for _ in range(JOBS_AFTER)]

        def ended() -> list[str] | str | None:
            # A worker that died ends the wait at once, and the assertion below says so.
            if stack.processes["worker"].poll() is not None:
                return "the worker exited"
            reads = LedgerReads(engine)
            states = [(job_answer(reads, job_id) or {}).get("state", "") for job_id in jobs]
            return states if set(states) <= FINAL_JOB_STATES else None

        assert wait_until(ended, timeout=120, what="every job to end") == ["reconciled"] * len(jobs)
        assert stack.processes["worker"].poll() is None
        assert stack.processes["worker"].pid == pid
        assert stack.processes["beat"].poll() is None
        assert cancels(sandbox, merchant) == {
            f"bambora:cancel_payment:{merchant}/out-{n}": 1 for n in range(1, count + 1)}
    finally:
        sandbox.settings(latency_ms=0)
        producer.close()
        engine.dispose()
        stack.stop_all()
        redis.stop()
