"""Jobs as the API, the CLI and the dashboard show them (the contract's shape), read in pages.

What one answer holds is bounded whatever the jobs' sizes: a job lists its first
``JOB_LEGS`` legs and a ``legs_next_cursor`` to page the rest (``get_legs``); in a list each job
carries its ``leg_counts`` by state and at most its first ``LISTED_LEGS`` legs.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from worker.domain.deliveries import OutcomeDelivery
from worker.domain.states import JobState, LegState
from worker.services.views.models import (
    Event,
    FieldError,
    Job,
    JobDetail,
    JobList,
    JobReconciliation,
    Leg,
    LegCounts,
    LegPage,
    LegReconciliation,
    Notification,
    ReplyTo,
)
from worker.services.views.read_side import (
    JobEvent,
    JobFilter,
    JobRecord,
    LegRecord,
    LegTotals,
    ReadSide,
)

JOB_LEGS = 1000  # legs listed with a job; the contract's figure
LISTED_LEGS = 100  # legs listed with each job of a list; the contract's figure
LEGS_PAGE_MAX = 1000  # the most legs one page of /jobs/{id}/legs answers
JOB_EVENTS = 500  # the newest events listed with a job


def leg_view(leg: LegRecord) -> Leg:
    return Leg(
        id=leg.id,
        provider=leg.provider,
        target=leg.target,
        state=leg.state,
        reason=leg.reason,
        detail=leg.detail,
        already_cancelled=leg.already_cancelled,
        at_risk=leg.at_risk,
        attempts=leg.attempts,
        provider_reference=leg.provider_reference,
        reconciliation=(LegReconciliation.model_validate(leg.reconciliation)
                        if leg.reconciliation is not None else None),
        updated_at=leg.updated_at,
    )


def leg_counts(totals: LegTotals) -> dict[str, int]:
    """Every leg state with its count, zeros included, so readers never miss a key."""
    return {state.value: totals.by_state.get(state, 0) for state in LegState}


def event_view(event: JobEvent) -> Event:
    return Event(type=event.type, at=event.created_at, note=event.note, leg=event.leg_id,
                 actor=event.actor, details=event.details or {})


def _job_fields(job: JobRecord, legs: list[LegRecord], totals: LegTotals,
                legs_next_cursor: str | None) -> dict[str, Any]:
    recon = job.reconciliation or {"state": "pending", "differences": []}
    if job.state is JobState.INVALID:
        recon = {"state": "not_applicable", "differences": []}
    return {
        "id": job.id,
        "idempotency_key": job.idempotency_key,
        "state": job.state,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "errors": [FieldError.model_validate(error) for error in job.errors or []],
        "leg_counts": LegCounts(**leg_counts(totals)),
        "legs": [leg_view(leg) for leg in legs],
        "legs_next_cursor": legs_next_cursor,
        "reconciliation": JobReconciliation.model_validate(recon),
    }


def job_view(job: JobRecord, legs: list[LegRecord], totals: LegTotals,
             legs_next_cursor: str | None) -> Job:
    """A job as a list shows it: its first legs, counts and reconciliation."""
    return Job(**_job_fields(job, legs, totals, legs_next_cursor))


def notification_view(delivery: OutcomeDelivery) -> Notification:
    """Outcomes (issue 17): one owed webhook or reply message, as the job lists it."""
    return Notification(
        kind=delivery.kind,
        url=delivery.destination.get("url"),
        reply_to=(ReplyTo(task=delivery.destination["task"], queue=delivery.destination["queue"])
                  if "task" in delivery.destination else None),
        final_state=JobState(delivery.final_state),
        status=delivery.status,
        attempts=delivery.attempts,
        last_http_status=delivery.last_status,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
    )


def check_jobs_cursor(reads: ReadSide, cursor: str) -> None:
    """ValueError unless the job list's cursor is one the API gave out.

    A forged cursor can decode yet hold a naive time (which the ledger refuses to compare), a
    time that overflows in UTC, or a NUL (which PostgreSQL refuses): each was a 500.
    """
    try:
        created_at, job_id = reads.decode_cursor(cursor)
        created_at.astimezone(UTC)  # a time past the year 9999 in UTC overflows
    except OverflowError as exc:
        raise ValueError("invalid cursor") from exc
    if created_at.tzinfo is None or "\x00" in job_id:
        raise ValueError("invalid cursor")


def encode_leg_cursor(job_id: str, position: int) -> str:
    """Where the next page of a job's legs starts (opaque to clients)."""
    raw = json.dumps([job_id, position]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_leg_cursor(cursor: str, job_id: str) -> int:
    """The position a cursor of this job's legs points at; ValueError when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        owner, position = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError("invalid cursor") from exc
    # Positions are 32-bit in the ledger: a forged larger one would overflow the query (a 500).
    if owner != job_id or type(position) is not int or not 0 <= position < 2**31:
        raise ValueError("invalid cursor")
    return position


def get_job(reads: ReadSide, job_id: str, *, legs: int = JOB_LEGS) -> JobDetail | None:
    """The job with its first ``legs`` legs (and a cursor to the rest, if any)."""
    with reads.snapshot() as views:
        job = views.get_job(job_id)
        if job is None:
            return None
        found = views.legs_from(job_id, 0, legs + 1)
        totals = views.leg_totals([job_id])[job_id]
        events = views.events_of(job_id, JOB_EVENTS)
        notifications = views.notifications_of(job_id)
    shown, more = found[:legs], len(found) > legs
    cursor = encode_leg_cursor(job_id, shown[-1].position + 1) if more and shown else None
    return JobDetail(**_job_fields(job, shown, totals, cursor),
                     events=[event_view(event) for event in events],
                     notifications=[notification_view(delivery) for delivery in notifications])


def get_legs(reads: ReadSide, job_id: str, *, cursor: str | None,
             limit: int = LEGS_PAGE_MAX) -> LegPage | None:
    """A page of the job's legs in order, from ``cursor`` (None: the first); None when there is
    no such job; ValueError when the cursor is not one of this job's."""
    start = decode_leg_cursor(cursor, job_id) if cursor else 0
    with reads.snapshot() as views:
        if views.get_job(job_id) is None:
            return None
        found = views.legs_from(job_id, start, limit + 1)
    shown = found[:limit]
    more = len(found) > limit and bool(shown)
    return LegPage(legs=[leg_view(leg) for leg in shown],
                   next_cursor=encode_leg_cursor(job_id, shown[-1].position + 1) if more else None)


def iter_legs(reads: ReadSide, job_id: str, *, start: str | None = None,
              page: int = LEGS_PAGE_MAX) -> Iterator[Leg]:
    """Every leg of the job from the cursor ``start`` on, a page in memory at a time."""
    cursor = start
    while True:
        found = get_legs(reads, job_id, cursor=cursor, limit=page)
        if found is None:
            return
        yield from found.legs
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


# Jobs read (with their legs) per read transaction while a list is streamed: 20 jobs of at most
# LISTED_LEGS legs are what a list holds in memory at once, whatever its limit.
JOBS_PER_READ = 20


def _filter(where: JobFilter | None, state: JobState | None) -> JobFilter:
    """``where``, narrowed to ``state`` when one is given (the older, state-only call)."""
    where = where or JobFilter()
    return dataclasses.replace(where, state=state) if state is not None else where


def stream_jobs(
    reads: ReadSide, *, state: JobState | None = None, limit: int, cursor: str | None,
    legs_per_job: int = LISTED_LEGS, where: JobFilter | None = None,
) -> tuple[str | None, Iterator[Job]]:
    """The next page's cursor, and the page's jobs newest first, read JOBS_PER_READ at a time
    (each job consistent with its legs and counts); ValueError if ``cursor`` is not ours."""
    after = reads.decode_cursor(cursor) if cursor else None
    with reads.snapshot() as views:
        found = views.list_jobs(where=_filter(where, state), limit=limit + 1, after=after)
    page, more = found[:limit], len(found) > limit
    next_cursor = reads.encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    ids = [job.id for job in page]

    def jobs() -> Iterator[Job]:
        for start in range(0, len(ids), JOBS_PER_READ):
            part = ids[start:start + JOBS_PER_READ]
            with reads.snapshot() as views:
                records = views.jobs_by_id(part)
                legs = views.first_legs(part, legs_per_job)
                totals = views.leg_totals(part)
            for job_id in part:
                shown, total = legs[job_id], totals[job_id]
                # Positions run from 0, so the rest starts after the first legs_per_job.
                rest = (encode_leg_cursor(job_id, legs_per_job) if total.legs > len(shown)
                        else None)
                yield job_view(records[job_id], shown, total, rest)

    return next_cursor, jobs()


def list_jobs(
    reads: ReadSide, *, state: JobState | None = None, limit: int, cursor: str | None,
    legs_per_job: int = LISTED_LEGS, where: JobFilter | None = None,
) -> JobList:
    """Newest first; ``cursor`` comes from the previous page (ValueError if it is not ours)."""
    next_cursor, jobs = stream_jobs(reads, state=state, limit=limit, cursor=cursor,
                                    legs_per_job=legs_per_job, where=where)
    return JobList(jobs=list(jobs), next_cursor=next_cursor)
