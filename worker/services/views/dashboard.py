"""What the operator dashboard shows: the job counts, and one job in detail (a page of its legs,
its notable legs, and the timeline of its provider calls and callback pages), every read bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.domain.states import JobState
from worker.services.views.jobs import job_view
from worker.services.views.read_side import AttemptRecord, LegRecord, LegTotals, ReadSide


@dataclass(frozen=True, slots=True)
class JobDetail:
    """One job as its dashboard page shows it; ``job`` lists its notable legs."""

    job: dict[str, Any]
    unlisted_notes: int
    legs: list[LegRecord]
    totals: LegTotals
    calls: list[AttemptRecord]
    pages: list[dict[str, Any]]
    positions: dict[str, tuple[int, str]]
    paywall_legs: list[LegRecord]


def job_counts(reads: ReadSide) -> dict[JobState, int]:
    """Jobs per state over the whole ledger (from the tallies)."""
    with reads.snapshot() as views:
        return views.job_tally()


def job_detail(reads: ReadSide, job_id: str, *, first: int, legs: int, notes: int,
               timeline: int) -> JobDetail | None:
    """The job with ``legs`` legs from position ``first``, its first ``notes`` notable legs and
    the latest ``timeline`` calls and callback pages, from one snapshot; None: no such job."""
    if "\x00" in job_id:  # no job id holds a NUL, and PostgreSQL refuses one in a text parameter
        return None
    with reads.snapshot() as views:
        record = views.get_job(job_id)
        if record is None:
            return None
        totals = views.leg_totals([job_id])[job_id]
        page = views.legs_from(job_id, first, legs)
        notable, notable_total = views.notable_legs(job_id, notes)
        found = job_view(record, notable, totals, None).model_dump(mode="json")
        differences = found["reconciliation"]["differences"]
        calls = views.attempts_of_job(job_id, timeline)
        pages = views.callback_pages_of_job(job_id, timeline)
        named = {d["leg"] for d in differences if d["leg"]} | {call.leg_id for call in calls}
        positions = views.leg_positions(job_id, sorted(named))
        paywall = views.paywall_legs_for(
            job_id, sorted({page["bulk_payment_id"] for page in pages}),
            sorted({page["merchant_unique_code"] for page in pages}))
    return JobDetail(found, notable_total - len(notable), page, totals, calls, pages, positions,
                     paywall)
