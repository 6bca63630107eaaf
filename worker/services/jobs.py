"""Keeping a job's state and reconciliation in step with its legs."""

from __future__ import annotations

import logging
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
    """Recompute the job's state (and, once its legs are final, its reconciliation).

    When the job becomes final, the outcomes its request asks for are owed in this transaction
    and their ids added to ``owed``, for the caller to dispatch after its commit (issue 17).

    The job's row is locked first: on PostgreSQL two workers recording legs of one job would
    otherwise each count the legs without the other's change, and both could leave the job
    short of final. (SQLite has one writer at a time anyway.)
    """
    job = uow.jobs.get(job_id, lock=True)
    if job is None or job.state is JobState.INVALID:
        return None
    counts = uow.legs.state_counts(job_id)
    if all(state.is_final for state in counts):
        views = [_leg_view(*row) for row in uow.legs.evidence(job_id)]
        recon = reconcile_job(job, views)
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
