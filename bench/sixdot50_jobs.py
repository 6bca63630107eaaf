"""Jobs per second and time to the first provider call, for single-leg 6DOT50 jobs.

Beside the jobs, in the same run and on the same broker and worker, in interleaved rounds: a
no-op task's drain rate, the ceiling for one task per job (a job here costs one task, two ledger
transactions and two provider calls). The worker's CPU per job and per no-op task is printed
too: on a shared machine it moves less than the rates do.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from sqlalchemy import func, select

from bench.measure import cpu_seconds, table
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.producer import publish


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def run(count: int = 500, rounds: int = 3, rate: float = 50.0, paced: int = 300,
        worker_concurrency: int | None = None) -> dict[str, Any]:
    """``rounds`` interleaved rounds of ``count`` no-op tasks then ``count`` jobs; medians.

    ``worker_concurrency`` overrides the worker's default (to compare settings side by side).
    """
    stack = Stack.prepare(Path(tempfile.mkdtemp(prefix="cancelflow-bench-6d-")))
    try:
        stack.start_sandbox()
        stack.start_worker(concurrency=worker_concurrency)
        sandbox = SandboxControl(stack.sandbox_url)
        settings = stack.settings()
        producer = create_celery(settings)
        engine = create_ledger_engine(settings.database_url)
        broker = redis.Redis.from_url(settings.redis_url)
        worker = psutil.Process(stack.processes["worker"].pid)
        sandbox_process = psutil.Process(stack.processes["sandbox"].pid)

        def reconciled(expected: int) -> bool:
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.state == "reconciled")).scalar_one()
            return bool(done >= expected)

        noop_rates: list[float] = []
        job_rates: list[float] = []
        ratios: list[float] = []
        noop_cpu: list[float] = []
        job_cpu: list[float] = []
        sandbox_cpu: list[float] = []
        for round_number in range(rounds):
            # The ceiling: no-op tasks published as fast as possible, counted as they run.
            counter = f"bench:noop:{uuid.uuid4().hex}"
            cpu_before = cpu_seconds(worker)
            started = time.perf_counter()
            for _ in range(count):
                producer.send_task("cancelflow.noop", args=[counter],
                                   queue="cancelflow.internal")
            def drained(key: str = counter) -> bool:
                return int(broker.get(key) or 0) >= count

            wait_until(drained, timeout=300, what="the no-op tasks", interval=0.02)
            noop_seconds = time.perf_counter() - started
            noop_cpu.append((cpu_seconds(worker) - cpu_before) * 1000 / count)

            # Jobs, published as fast as possible, to reconciled.
            batches = [sandbox.seed_batch(count=1, amount_each="10.00")["id"]
                       for _ in range(count)]
            cpu_before, sandbox_before = cpu_seconds(worker), cpu_seconds(sandbox_process)
            started = time.perf_counter()
            for batch in batches:
                publish(producer, {"idempotency_key": f"bench-{uuid.uuid4()}",
                                   "legs": [{"provider": "sixdot50", "batch_id": batch}]})
            def finished(expected: int = count * (round_number + 1)) -> bool:
                return reconciled(expected)

            wait_until(finished, timeout=600, what=f"{count} jobs", interval=0.02)
            job_seconds = time.perf_counter() - started
            job_cpu.append((cpu_seconds(worker) - cpu_before) * 1000 / count)
            sandbox_cpu.append((cpu_seconds(sandbox_process) - sandbox_before) * 1000 / count)
            noop_rates.append(count / noop_seconds)
            job_rates.append(count / job_seconds)
            ratios.append(noop_seconds / job_seconds)

        # Latency to the first provider call, at a steady rate.
        paced_batches = [sandbox.seed_batch(count=1, amount_each="10.00")["id"]
                         for _ in range(paced)]
        published: dict[str, float] = {}
        start = time.time()
        for n, batch in enumerate(paced_batches):
            time.sleep(max(0.0, start + n / rate - time.time()))  # pacing, not waiting on state
            published[batch] = time.time()
            publish(producer, {"idempotency_key": f"paced-{uuid.uuid4()}",
                               "legs": [{"provider": "sixdot50", "batch_id": batch}]})
        wait_until(lambda: reconciled(count * rounds + paced), timeout=600,
                   what="the paced jobs", interval=0.1)
        first_call: dict[str, float] = {}
        for call in sandbox.calls(provider="sixdot50", operation="cancel_batch"):
            target = call["target"]
            if target in published and target not in first_call:
                first_call[target] = datetime.fromisoformat(
                    call["at"].replace("Z", "+00:00")).timestamp()
        delays = [(first_call[b] - published[b]) * 1000 for b in paced_batches if b in first_call]
        producer.close()
        engine.dispose()
        sandbox.close()
    finally:
        stack.stop_all()
    result = {
        "jobs_per_round": count,
        "rounds": rounds,
        "ratio_jobs_to_noop": round(statistics.median(ratios), 3),
        "ratio_by_round": [round(r, 3) for r in ratios],
        "noop_tasks_per_second": round(statistics.median(noop_rates), 1),
        "jobs_per_second": round(statistics.median(job_rates), 1),
        "worker_cpu_ms_per_noop_task": round(statistics.median(noop_cpu), 2),
        "worker_cpu_ms_per_job": round(statistics.median(job_cpu), 2),
        "sandbox_cpu_ms_per_job": round(statistics.median(sandbox_cpu), 2),
        "paced_jobs": paced,
        "paced_rate_per_second": rate,
        "publish_to_first_call_p50_ms": round(statistics.median(delays), 1),
        "publish_to_first_call_p99_ms": round(_percentile(delays, 0.99), 1),
    }
    table("6DOT50 single-leg jobs against a no-op task on the same broker and worker "
          f"(threads x{worker_concurrency or 'default'}), interleaved rounds, medians",
          [(k, str(v)) for k, v in result.items()])
    return result
