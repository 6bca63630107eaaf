"""``cancelflow demo``: the whole stack, a sample of cancellations, the reconciliation report."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from worker.devstack.sandbox_control import SandboxControl
from worker.devstack.stack import Stack

Scenario = tuple[str, dict[str, Any]]


def seed_scenarios(sandbox: SandboxControl) -> list[Scenario]:
    """Sandbox fixtures and the producer messages that exercise every outcome."""
    draft = sandbox.seed_batch(count=185, amount_each="100.00", name="payroll-november")["id"]
    closed = sandbox.seed_batch(count=3, amount_each="250.00", statusCode="CLOSED")["id"]
    done = sandbox.seed_batch(count=4, amount_each="75.00", statusCode="CANCELLED")["id"]
    flaky = sandbox.seed_batch(count=20, amount_each="10.00")["id"]
    short = sandbox.seed_batch(count=10, amount_each="50.00")["id"]
    sandbox.add_fault(provider="sixdot50", operation="cancel_batch", target=flaky,
                      action="status", status=503, times=2)

    def job(key: str, batch: str, **extra: Any) -> Scenario:
        request = {"idempotency_key": f"demo-{key}-{uuid.uuid4().hex[:6]}",
                   "reason": "demo", "legs": [{"provider": "sixdot50", "batch_id": batch}],
                   **extra}
        return key, request

    return [
        job("draft-batch", draft, expect={"count": 185, "amount": "18500.00"}),
        job("closed-batch", closed),
        job("already-cancelled", done),
        job("provider-503-twice", flaky),
        job("expect-mismatch", short, expect={"count": 12, "amount": "600.00"}),
        ("malformed-message", {"idempotency_key": f"demo-bad-{uuid.uuid4().hex[:6]}",
                               "legs": [{"provider": "acme", "id": "x"}]}),
    ]


def wait_for_jobs(
    fetch: Callable[[str], dict[str, Any] | None], job_ids: list[str], timeout: float,
    console: Console,
) -> list[dict[str, Any]]:
    """Poll until every job is final, showing progress; the jobs as they ended."""
    final = {"reconciled", "mismatch", "failed", "invalid"}
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("waiting for jobs to end", total=len(job_ids))
        while len(done) < len(job_ids) and time.monotonic() < deadline:
            for job_id in job_ids:
                if job_id in done:
                    continue
                job = fetch(job_id)
                if job is not None and job["state"] in final:
                    done[job_id] = job
            progress.update(task, completed=len(done))
            time.sleep(0.2)
    missing = [job_id for job_id in job_ids if job_id not in done]
    if missing:
        raise TimeoutError(f"{len(missing)} job(s) not final after {timeout:.0f} s: {missing}")
    return [done[job_id] for job_id in job_ids]


def run_demo(run_dir: Path, console: Console) -> list[dict[str, Any]]:
    from sqlalchemy import Engine

    from worker.celery_app import create_celery
    from worker.ledger import create_ledger_engine
    from worker.producer import publish
    from worker.services.views import get_job
    from worker.settings import Settings

    stack = Stack.prepare(run_dir, extra_env={"CANCELFLOW_SWEEP_INTERVAL_SECONDS": "5"})
    engine: Engine | None = None
    try:
        console.print(f"starting the stack in {run_dir} ...")
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker(concurrency=4)
        stack.start_beat()
        stack.start_flower()
        console.print(f"sandbox {stack.sandbox_url}  receiver {stack.receiver_url}  "
                      f"flower {stack.flower_url}")
        sandbox = SandboxControl(stack.sandbox_url)
        scenarios = seed_scenarios(sandbox)
        settings = Settings(**{  # type: ignore[arg-type]
            k.removeprefix("CANCELFLOW_").lower(): v for k, v in stack.env.items()})
        producer = create_celery(settings)
        job_ids: list[str] = []
        for name, request in scenarios:
            job_id = publish(producer, request)
            assert job_id is not None
            console.print(f"submitted {name}: job {job_id}")
            job_ids.append(job_id)
        engine = create_ledger_engine(settings.database_url)
        bound = engine

        def fetch(job_id: str) -> dict[str, Any] | None:
            return get_job(bound, job_id)

        return wait_for_jobs(fetch, job_ids, timeout=120, console=console)
    finally:
        if engine is not None:
            engine.dispose()
        stack.stop_all()
