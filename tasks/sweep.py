"""The periodic sweep, scheduled by beat."""

from __future__ import annotations

from worker.bootstrap import process_context
from worker.celery_app import app
from worker.services.sweep import sweep as run_sweep
from worker.task_names import SWEEP


@app.task(name=SWEEP)
def sweep() -> dict[str, int]:
    """Re-dispatch lost work; safe to run from several beats at once."""
    report = run_sweep(process_context())
    return {
        "redispatched": report.redispatched,
        "expired_leases": report.expired_leases,
        "evidence_reads": report.evidence_reads,
        "callback_recoveries": report.callback_recoveries,
    }
