"""Operator actions (issue 17): retry a leg, resolve it by hand, abandon a job's unsent legs.

Each action is a compare-and-set on what it changes (a leg's version; an unsent leg's state),
so two operators acting at once cannot both win: the second is refused (``ActionRefused``, the
API's 409). Each is recorded in the same transaction as an event of the job, with its note.

A retried leg goes back to ``retrying``; when a provider was called for it before, it is marked
to read its target's state before any cancel (``needs_resolve``, as a leg whose lease expired
mid-call is), so a retry never cancels twice. A leg resolved by hand ends with reason
``resolved_by_operator`` (also when ``cancelled``: the reason says who settled it) and the note
as its detail; a cancelled one has no provider figures, which its reconciliation says (a
``figures`` difference), so the job ends ``mismatch`` rather than claim figures nobody read.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from worker.domain.events import EventType
from worker.domain.reconciliation import leg_reconciliation_without_figures
from worker.domain.states import LegState, Reason
from worker.services.jobs import refresh_job
from worker.services.ports import Dispatcher
from worker.services.records import LegRecord, NewEvent
from worker.services.unit_of_work import AbstractUnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

NOTE_MAX = 2000
RESOLVE_OUTCOMES = (LegState.CANCELLED, LegState.REJECTED)
_RESOLVABLE = frozenset({
    LegState.PENDING, LegState.RETRYING, LegState.UNKNOWN, LegState.AWAITING_CALLBACKS,
    LegState.REFUND_REQUESTED, LegState.FAILED, LegState.REJECTED,
})


class OperatorError(Exception):
    """An operator action that did not happen; the message says why, for a person."""


class NotFound(OperatorError):
    """No leg or job has this id (404)."""


class ActionRefused(OperatorError):
    """The leg or job is not in a state that allows the action (409)."""


def _retryable(leg: LegRecord) -> bool:
    return leg.state in (LegState.FAILED, LegState.UNKNOWN) or (
        leg.state is LegState.REJECTED and leg.reason is Reason.PROVIDER_NOT_CONFIGURED)


def _was(leg: LegRecord) -> dict[str, Any]:
    return {"state": leg.state.value, "reason": leg.reason.value if leg.reason else None}


def _leg(uow: AbstractUnitOfWork, leg_id: str) -> LegRecord:
    # No id holds a NUL, and PostgreSQL refuses one in a text parameter.
    leg: LegRecord | None = None if "\x00" in leg_id else uow.legs.get(leg_id)
    if leg is None:
        raise NotFound(f"no leg {leg_id}")
    return leg


def retry_leg(uows: UnitOfWorkFactory, dispatcher: Dispatcher, leg_id: str, *, note: str | None,
              actor: str | None, now: datetime) -> str:
    """Run a failed, unknown or unconfigured leg again; its job's id."""
    with uows(durable=True) as uow:
        leg = _leg(uow, leg_id)
        if not _retryable(leg):
            shown = leg.state.value + (f"/{leg.reason.value}" if leg.reason else "")
            raise ActionRefused(
                f"leg {leg_id} is {shown}: only a failed, unknown or "
                "rejected/provider_not_configured leg can be retried")
        read_first = leg.attempts > 0
        applied = uow.legs.update(
            leg_id, leg.version, state=LegState.RETRYING.value, reason=None, detail=None,
            retries=0, needs_resolve=read_first, next_attempt_at=now, reconciliation=None,
            recovery_stage=0, provisional_evidence=None, evidence_deadline=None,
            evidence_reads=0, updated_at=now)
        if not applied:
            raise ActionRefused(f"leg {leg_id} changed meanwhile; look again and retry")
        uow.events.add(NewEvent(
            leg.job_id, EventType.LEG_RETRIED.value, now, note, leg_id, actor,
            {"was": _was(leg), "read_first": read_first}))
        refresh_job(uow, leg.job_id, now)
        uow.commit()
    log.info("leg %s: retried by an operator (read first: %s)", leg_id, read_first)
    try:
        dispatcher.process_leg(leg_id, 0)
    except Exception:  # committed as due now: the sweep dispatches it if this is lost
        log.exception("leg %s: could not enqueue its retry; the sweep will", leg_id)
    return leg.job_id


def resolve_leg(uows: UnitOfWorkFactory, leg_id: str, outcome: LegState, *, note: str,
                actor: str | None, now: datetime) -> str:
    """End a leg as a person settled it outside cancelflow; its job's id."""
    if outcome not in RESOLVE_OUTCOMES:
        raise ValueError(f"outcome must be cancelled or rejected, not {outcome.value}")
    with uows(durable=True) as uow:
        leg = _leg(uow, leg_id)
        if leg.state is LegState.IN_FLIGHT:
            raise ActionRefused(f"leg {leg_id} is in_flight: a provider call is under way; "
                                "resolve it once the call has ended")
        if leg.state not in _RESOLVABLE or leg.reason is Reason.RESOLVED_BY_OPERATOR:
            shown = leg.state.value + (f"/{leg.reason.value}" if leg.reason else "")
            raise ActionRefused(f"leg {leg_id} is {shown} already: nothing to resolve")
        figures = (leg_reconciliation_without_figures(leg_id)
                   if outcome is LegState.CANCELLED else None)
        applied = uow.legs.update(
            leg_id, leg.version, state=outcome.value, reason=Reason.RESOLVED_BY_OPERATOR.value,
            detail=note, needs_resolve=False, next_attempt_at=None, lease_token=None,
            lease_expires_at=None, reconciliation=figures, provisional_evidence=None,
            evidence_deadline=None, updated_at=now)
        if not applied:
            raise ActionRefused(f"leg {leg_id} changed meanwhile; look again before resolving")
        uow.events.add(NewEvent(
            leg.job_id, EventType.LEG_RESOLVED.value, now, note, leg_id, actor,
            {"was": _was(leg), "outcome": outcome.value}))
        refresh_job(uow, leg.job_id, now)
        uow.commit()
    log.info("leg %s: resolved by an operator as %s", leg_id, outcome.value)
    return leg.job_id


def abandon_job(uows: UnitOfWorkFactory, job_id: str, *, note: str, actor: str | None,
                now: datetime) -> int:
    """End the job's legs that were never sent ``rejected / abandoned``; how many."""
    with uows(durable=True) as uow:
        job = None if "\x00" in job_id else uow.jobs.get(job_id, lock=True)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.state.is_final:
            raise ActionRefused(f"job {job_id} is {job.state.value}: nothing left to abandon")
        ended = uow.legs.reject_unsent(job_id, Reason.ABANDONED, note, now)
        if not ended:
            raise ActionRefused(f"job {job_id} has no unsent leg (pending, never called) "
                                "left to abandon")
        uow.events.add(NewEvent(
            job_id, EventType.JOB_ABANDONED.value, now, note, None, actor, {"legs": ended}))
        refresh_job(uow, job_id, now)
        uow.commit()
    log.info("job %s: %d unsent legs abandoned by an operator", job_id, ended)
    return ended
