"""Single-leg 6DOT50 jobs through the producer message to ``reconciled``, on the local stack."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from worker.celery_app import create_celery
from worker.devstack.sandbox_control import SandboxControl
from worker.devstack.stack import Stack
from worker.devstack.waiting import wait_until
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.producer import publish


def run(count: int) -> dict[str, Any]:
    stack = Stack.prepare(Path(tempfile.mkdtemp(prefix="cancelflow-bench-")))
    try:
        stack.start_sandbox()
        stack.start_worker()
        sandbox = SandboxControl(stack.sandbox_url)
        batches = [sandbox.seed_batch(count=1, amount_each="10.00")["id"] for _ in range(count)]
        settings = stack.settings()
        producer = create_celery(settings)
        engine = create_ledger_engine(settings.database_url)
        started = time.perf_counter()
        for batch in batches:
            publish(producer, {"idempotency_key": f"bench-{uuid.uuid4()}",
                               "legs": [{"provider": "sixdot50", "batch_id": batch}]})
        published = time.perf_counter() - started

        def reconciled() -> int | None:
            with engine.connect() as conn:
                done = conn.execute(
                    select(func.count()).select_from(jobs).where(jobs.c.state == "reconciled")
                ).scalar_one()
            return done if done >= count else None

        wait_until(reconciled, timeout=600, what=f"{count} jobs to reconcile", interval=0.2)
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            rows = conn.execute(select(jobs.c.created_at, jobs.c.updated_at)).all()
        latencies = sorted((u - c).total_seconds() for c, u in rows)
        result = {
            "jobs": count,
            "publish_seconds": round(published, 3),
            "wall_seconds": round(elapsed, 3),
            "jobs_per_second": round(count / elapsed, 1),
            "accept_to_reconciled_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "accept_to_reconciled_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))]
                                                 * 1000, 1),
        }
        print("6DOT50 single-leg jobs, producer message to reconciled")
        for key, value in result.items():
            print(f"  {key:32} {value}")
        engine.dispose()
        producer.close()
        return result
    finally:
        stack.stop_all()
