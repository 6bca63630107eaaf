"""``cancelflow demo``: the whole stack, a sample of cancellations, the reconciliation report."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack

Scenario = tuple[str, dict[str, Any]]
PAYWALL_ZONE = "Europe/Istanbul"


def seed_scenarios(sandbox: SandboxControl, receiver_url: str) -> list[Scenario]:
    """Sandbox fixtures and the producer messages that exercise every provider and outcome."""
    sandbox.settings(paywall={"callback_url": f"{receiver_url}/callbacks/paywall"})
    draft = sandbox.seed_batch(count=185, amount_each="100.00", name="payroll-november")["id"]
    closed = sandbox.seed_batch(count=3, amount_each="250.00", statusCode="CLOSED")["id"]
    done = sandbox.seed_batch(count=4, amount_each="75.00", statusCode="CANCELLED")["id"]
    flaky = sandbox.seed_batch(count=20, amount_each="10.00")["id"]
    short = sandbox.seed_batch(count=10, amount_each="50.00")["id"]
    sandbox.add_fault(provider="sixdot50", operation="cancel_batch", target=flaky,
                      action="status", status=503, times=2)
    tag = uuid.uuid4().hex[:6]
    today = datetime.now(ZoneInfo(PAYWALL_ZONE)).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    bulk = f"concert-{tag}"
    sandbox.seed_bulk(code=bulk, count=2500, amount_each="40.00", order="reverse",
                      duplicate_pages=[2])
    partial = f"festival-{tag}"
    sandbox.seed_bulk(code=partial, count=30, amount_each="25.00", fail_count=2)
    lost = f"matinee-{tag}"
    sandbox.seed_bulk(code=lost, count=1500, amount_each="15.00", drop_pages=[1])
    late = f"late-{tag}"
    sandbox.seed_bulk(code=late, date=yesterday, count=5, amount_each="60.00")
    late_reject = f"late-reject-{tag}"
    sandbox.seed_bulk(code=late_reject, date=yesterday, count=5, amount_each="60.00")
    merchant = "T123456789"
    sandbox.seed_payments(merchant=merchant, count=50, prefix=f"ticket-{tag}-", amount=12550)
    sandbox.seed_payment(merchant=merchant, reference=f"captured-{tag}", state="Captured")
    for side in ("a", "b"):
        sandbox.seed_payment(merchant=merchant, reference=f"mirror-{tag}-{side}", amount=9900)

    def job(key: str, legs: list[dict[str, Any]], **extra: Any) -> Scenario:
        request = {"idempotency_key": f"demo-{key}-{tag}", "reason": "demo", "legs": legs,
                   **extra}
        return key, request

    def sixdot50(batch: str) -> list[dict[str, Any]]:
        return [{"provider": "sixdot50", "batch_id": batch}]

    def paywall(code: str, day: str = today.isoformat()) -> list[dict[str, Any]]:
        return [{"provider": "paywall", "scope": "bulk", "merchant_unique_code": code,
                 "payment_date": day}]

    def bambora(*references: str) -> list[dict[str, Any]]:
        return [{"provider": "bambora", "merchant": merchant, "payment_reference": ref}
                for ref in references]

    return [
        job("sixdot50-draft-batch", sixdot50(draft), expect={"count": 185, "amount": "18500.00"}),
        job("sixdot50-closed-batch", sixdot50(closed)),
        job("sixdot50-already-cancelled", sixdot50(done)),
        job("sixdot50-503-twice", sixdot50(flaky)),
        job("sixdot50-expect-mismatch", sixdot50(short),
            expect={"count": 12, "amount": "600.00"}),
        job("paywall-bulk-2500-pages-reordered", paywall(bulk),
            expect={"count": 2500, "amount": "100000.00", "currency": "TRY"}),
        job("paywall-bulk-2-payments-failed", paywall(partial)),
        job("paywall-page-lost-recovered", paywall(lost)),
        job("paywall-day-over-refund", paywall(late, yesterday), on_cutoff="refund"),
        job("paywall-day-over-reject", paywall(late_reject, yesterday)),
        job("bambora-event-50-tickets", bambora(*(f"ticket-{tag}-{i}" for i in range(1, 51)))),
        job("bambora-captured", bambora(f"captured-{tag}")),
        job("bambora-mirror", bambora(f"mirror-{tag}-a", f"mirror-{tag}-b"), mirror=True),
        ("malformed-message", {"idempotency_key": f"demo-bad-{tag}",
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
    from worker.ledger.views import LedgerReads
    from worker.producer import publish
    from worker.services.views import get_job

    # Short waits, so that the lost-page recovery shows within the demo.
    stack = Stack.prepare(run_dir, extra_env={"CANCELFLOW_SWEEP_INTERVAL_SECONDS": "2",
                                              "CANCELFLOW_CALLBACK_TIMEOUT_SECONDS": "5"})
    engine: Engine | None = None
    try:
        console.print(f"starting the stack in {run_dir} ...")
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker()
        stack.start_beat()
        stack.start_flower()
        console.print(f"sandbox {stack.sandbox_url}  receiver {stack.receiver_url}  "
                      f"flower {stack.flower_url} (basic auth: {run_dir}/flower-auth)")
        sandbox = SandboxControl(stack.sandbox_url)
        scenarios = seed_scenarios(sandbox, stack.receiver_url)
        settings = stack.settings()
        producer = create_celery(settings)
        job_ids: list[str] = []
        for name, request in scenarios:
            job_id = publish(producer, request)
            assert job_id is not None
            console.print(f"submitted {name}: job {job_id}")
            job_ids.append(job_id)
        engine = create_ledger_engine(settings.database_url)
        reads = LedgerReads(engine)

        def fetch(job_id: str) -> dict[str, Any] | None:
            found = get_job(reads, job_id)
            return found.model_dump(mode="json") if found else None

        jobs = wait_for_jobs(fetch, job_ids, timeout=120, console=console)
        sandbox.close()
        return jobs
    finally:
        if engine is not None:
            engine.dispose()
        stack.stop_all()
