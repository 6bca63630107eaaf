"""5,000 Bambora legs in one job against the sandbox at 50 ms latency, beside the ceiling.

The ceiling is the same number of cancel calls made by a bare httpx client at the same
concurrency against the same sandbox, in the same run: what the network and the sandbox allow.
The worker's legs per second over it says what cancelflow's bookkeeping (ledger, broker, retries
machinery) costs. Peak memory is the worker's whole process tree.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
from sqlalchemy import select

from bench.measure import PeakMemory, run_concurrently, table
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.ledger.views import LedgerReads
from worker.producer import publish
from worker.services.views import get_job

PROCESSES = 1
THREADS = 8


def _ceiling(sandbox_url: str, merchant: str, count: int, concurrency: int) -> float:
    auth = httpx.post(f"{sandbox_url}/bambora-auth/connect/token",
                      data={"grant_type": "client_credentials"},
                      auth=("sandbox-client", "sandbox-secret")).json()["access_token"]
    headers = {"Authorization": f"Bearer {auth}", "API-Version": "1"}
    with httpx.Client(timeout=30, headers=headers,
                      limits=httpx.Limits(max_connections=concurrency)) as client:
        def cancel(n: int) -> None:
            ref = quote(f"ceil-{n}", safe="")
            answer = client.post(f"{sandbox_url}/bambora/v1/merchants/{merchant}/payments/"
                                 f"{ref}/cancel/")
            if answer.status_code != 201:
                raise RuntimeError(f"ceiling cancel answered {answer.status_code}")

        return run_concurrently(range(1, count + 1), cancel, concurrency)


def _job_round(stack: Stack, sandbox: SandboxControl, engine: Any, producer: Any,
               count: int) -> tuple[float, float, dict[str, Any], int]:
    """One job of ``count`` fresh payments: (seconds, worker CPU seconds, job, once-effects)."""
    merchant = f"JOB{uuid.uuid4().hex[:6]}"
    sandbox.seed_payments(merchant=merchant, count=count, prefix="leg-")
    request = {"idempotency_key": f"bench-{uuid.uuid4()}", "legs": [
        {"provider": "bambora", "merchant": merchant, "payment_reference": f"leg-{n}"}
        for n in range(1, count + 1)]}
    worker = psutil.Process(stack.processes["worker"].pid)
    cpu_before = sum(worker.cpu_times()[:2])
    started = time.perf_counter()
    job_id = publish(producer, request)
    assert job_id is not None

    def final() -> bool:
        # Only the job's state: polling the whole job would load 5,000 legs each time.
        with engine.connect() as conn:
            state = conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
        return state in ("reconciled", "mismatch", "failed")

    wait_until(final, timeout=600, what=f"the {count}-leg job", interval=0.1)
    elapsed = time.perf_counter() - started
    cpu = sum(worker.cpu_times()[:2]) - cpu_before
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None
    effects = sandbox.effects("bambora")
    once = sum(1 for key, n in effects.items() if f":{merchant}/" in key and n == 1)
    return elapsed, cpu, job.model_dump(mode="json"), once


def run(count: int = 5000, concurrency: int = 50, latency_ms: int = 50,
        rounds: int = 2) -> dict[str, Any]:
    stack = Stack.prepare(Path(tempfile.mkdtemp(prefix="cancelflow-bench-bb-")), extra_env={
        "CANCELFLOW_CONCURRENCY_BAMBORA": str(concurrency),
    })
    try:
        stack.start_sandbox()
        sandbox = SandboxControl(stack.sandbox_url)
        sandbox.settings(latency_ms=latency_ms)
        stack.start_worker(concurrency=THREADS)
        settings = stack.settings()
        producer = create_celery(settings)
        engine = create_ledger_engine(settings.database_url)
        ceilings, walls, cpus = [], [], []
        # Interleaved rounds, medians kept: a noisy moment hits both sides, not one.
        with PeakMemory(stack.processes["worker"].pid) as memory:
            for n in range(rounds):
                merchant = f"CEIL{n}"
                sandbox.seed_payments(merchant=merchant, count=count, prefix="ceil-")
                ceilings.append(_ceiling(stack.sandbox_url, merchant, count, concurrency))
                elapsed, cpu, job, once = _job_round(stack, sandbox, engine, producer, count)
                walls.append(elapsed)
                cpus.append(cpu)
        cancelled = job["leg_counts"]["cancelled"]  # every leg, listed or not
        producer.close()
        engine.dispose()
        sandbox.close()
    finally:
        stack.stop_all()
    ceiling, elapsed = statistics.median(ceilings), statistics.median(walls)
    result = {
        "legs": count,
        "rounds": rounds,
        "concurrency": concurrency,
        "sandbox_latency_ms": latency_ms,
        "ceiling_calls_per_second": round(count / ceiling, 1),
        "worker_legs_per_second": round(count / elapsed, 1),
        "ratio_to_ceiling": round(ceiling / elapsed, 3),
        "ratios_per_round": [round(c / w, 3) for c, w in zip(ceilings, walls, strict=True)],
        "last_job_state": job["state"],
        "last_job_legs_cancelled": cancelled,
        "last_job_payments_cancelled_once_at_sandbox": once,
        "worker_peak_rss_mb": round(memory.peak / 2**20, 1),
        "worker_cpu_ms_per_leg": round(statistics.median(cpus) * 1000 / count, 2),
    }
    table(f"Bambora: one job of {count} legs, sandbox latency {latency_ms} ms, "
          f"{concurrency} calls in flight (one worker process, threads pool x{THREADS}), "
          f"median of {rounds} interleaved rounds",
          [(k, str(v)) for k, v in result.items()])
    return result
