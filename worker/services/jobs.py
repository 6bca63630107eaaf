"""Keeping a job's state and reconciliation in step with its legs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from worker.domain.jobs import derive_job_state
from worker.domain.reconciliation import (
    Expectation,
    JobReconciliation,
    LegEvidence,
    LegView,
    ReconciliationState,
    reconcile,
)
from worker.domain.states import JobState, LegState
from worker.services.outcome_log import job_ended
from worker.services.outcomes import owe_outcomes
from worker.services.records import JobRecord
from worker.services.unit_of_work import AbstractUnitOfWork

log = logging.getLogger(__name__)


def _expectation(job: JobRecord) -> Expectation | None:
    expect: dict[str, Any] | None = (job.request or {}).get("expect")
    if not expect:
        return None
    return Expectation(int(expect["count"]), Decimal(expect["amount"]), expect.get("currency"))


def _leg_view(leg_id: str, state: LegState, reconciliation: dict[str, Any] | None) -> LegView:
    # The ledger hands every leg's reconciliation over in the contract's shape.
    if reconciliation and reconciliation.get("reported") is None:
        return LegView(leg_id, state, None, figures_missing=True)
    evidence = LegEvidence.from_json(reconciliation) if reconciliation else None
    return LegView(leg_id, state, evidence)


def reconcile_job(job: JobRecord, legs: list[LegView]) -> JobReconciliation:
    """The job's reconciliation, a pure function of its legs' latest evidence."""
    return reconcile(legs, expect=_expectation(job),
                     mirror=bool((job.request or {}).get("mirror")))


def refresh_job(uow: AbstractUnitOfWork, job_id: str, now: datetime,
                owed: list[str] | None = None) -> JobState | None:
    """:func:`refresh_jobs` of one job: its state, or None (no such job, or an invalid one)."""
    return refresh_jobs(uow, [job_id], now, owed).get(job_id)


def refresh_jobs(uow: AbstractUnitOfWork, job_ids: Iterable[str], now: datetime,
                 owed: list[str] | None = None) -> dict[str, JobState]:
    """Recompute each job's state (and, once its legs are final, its reconciliation), with
    a few statements for all of them.

    When the job becomes final, the outcomes its request asks for are owed in this transaction
    and their ids added to ``owed``, for the caller to dispatch after its commit (issue 17).

    The jobs' rows are locked first, in id order: on PostgreSQL two workers recording legs of
    one job would otherwise each count the legs without the other's change, and both could leave
    the job short of final. (SQLite has one writer at a time anyway.)
    """
    found = [job for job in uow.jobs.get_many(sorted(set(job_ids)), lock=True)
             if job.state is not JobState.INVALID]
    counts = uow.legs.state_counts([job.id for job in found])
    ended = [job.id for job in found if all(state.is_final for state in counts[job.id])]
    evidence = uow.legs.evidence(ended)
    return {job.id: _refresh(uow, job, counts[job.id], evidence.get(job.id), now, owed)
            for job in found}


def _refresh(uow: AbstractUnitOfWork, job: JobRecord, counts: dict[LegState, int],
             evidence: list[tuple[str, LegState, dict[str, Any] | None]] | None,
             now: datetime, owed: list[str] | None) -> JobState:
    job_id = job.id
    if evidence is not None:
        recon = reconcile_job(job, [_leg_view(*row) for row in evidence])
    else:
        recon = JobReconciliation(ReconciliationState.PENDING)
    state = derive_job_state(counts.keys(), recon.state)
    recon_json = recon.to_json()
    if state is not job.state or recon_json != job.reconciliation:
        uow.jobs.set_state(job_id, state, recon_json, now)
        if state is not job.state and state.is_final:
            job_ended(job_id, state, counts)
            # Outcomes (issue 17): the outbox rows, in the transaction that ends the job.
            ids = owe_outcomes(uow, job, state, now)
            if owed is not None:
                owed.extend(ids)
        elif state is not job.state:
            log.debug("job %s: %s -> %s", job_id, job.state.value, state.value)
    return state
