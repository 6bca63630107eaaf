"""What a Paywall bulk costs as it grows: 1,000, 10,000 and 150,000 payments from the cancel to
``reconciled`` (callback pages of 1,000): wall time, peak memory of the worker and of the
receiver, and the ledger's size. Time should grow no worse than linearly, memory stay flat."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.measure import PeakMemory
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.producer import publish

SIZES = (1_000, 10_000, 150_000)


def _ledger_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.glob("cancelflow.db*") if p.is_file())


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="cancelflow-bench-pw-"))
    stack = Stack.prepare(run_dir, extra_env={"CANCELFLOW_PAYWALL_TIMEZONE": "UTC"})
    rows: list[dict[str, Any]] = []
    try:
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker()
        sandbox = SandboxControl(stack.sandbox_url)
        sandbox.settings(paywall={"timezone": "UTC", "delay_ms": 0,
                                  "callback_url": f"{stack.receiver_url}/callbacks/paywall"})
        settings = stack.settings()
        producer = create_celery(settings)
        engine = create_ledger_engine(settings.database_url)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        for size in sizes:
            code = f"growth-{size}-{uuid.uuid4().hex[:6]}"
            sandbox.seed_bulk(code=code, date=today, count=size, amount_each="10.00")
            before = _ledger_bytes(run_dir)
            with PeakMemory(stack.processes["worker"].pid) as worker_memory, \
                    PeakMemory(stack.processes["receiver"].pid) as receiver_memory:
                started = time.perf_counter()
                job_id = publish(producer, {"idempotency_key": code, "legs": [
                    {"provider": "paywall", "scope": "bulk", "merchant_unique_code": code,
                     "payment_date": today}]})

                def final(job_id: str | None = job_id) -> bool:
                    with engine.connect() as conn:
                        state = conn.execute(
                            select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
                    return state in ("reconciled", "mismatch", "failed")

                wait_until(final, timeout=900, what=f"the {size}-payment bulk", interval=0.1)
                seconds = time.perf_counter() - started
            rows.append({
                "payments": size,
                "seconds": round(seconds, 2),
                "ms_per_1000_payments": round(seconds * 1_000_000 / size, 1),
                "worker_peak_rss_mb": round(worker_memory.peak / 2**20, 1),
                "receiver_peak_rss_mb": round(receiver_memory.peak / 2**20, 1),
                "ledger_growth_mb": round((_ledger_bytes(run_dir) - before) / 2**20, 2),
            })
        producer.close()
        engine.dispose()
        sandbox.close()
    finally:
        stack.stop_all()
    print("Paywall bulk from cancel to reconciled (pages of 1,000; receiver gunicorn x2)")
    header = list(rows[0])
    print("  " + "  ".join(f"{h:>22}" for h in header))
    for row in rows:
        print("  " + "  ".join(f"{row[h]!s:>22}" for h in header))
    first, last = rows[0], rows[-1]
    growth = round(last["ms_per_1000_payments"] / first["ms_per_1000_payments"], 2)
    print(f"  time per 1,000 payments, largest over smallest: {growth} (<= 1: linear or better)")
    return {"sizes": rows, "time_per_payment_growth": growth}
