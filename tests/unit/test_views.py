"""The read side's use cases on an in-memory read side: paging, cursors, counts, figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fakes.read_side import T0, FakeReadSide, job_record
from worker.domain.states import JobState
from worker.services.views import (
    LedgerUnavailable,
    check_jobs_cursor,
    get_job,
    get_legs,
    iter_legs,
    list_jobs,
)
from worker.services.views.dashboard import job_counts, job_detail
from worker.services.views.metrics import ledger_figures


def test_a_job_lists_its_first_legs_and_a_cursor_pages_the_rest() -> None:
    """Given a job of 7 legs, when it is read with 3, then a cursor pages the other 4 in order."""
    reads = FakeReadSide()
    reads.add_job(job_record("j1"), legs=7)
    job = get_job(reads, "j1", legs=3)
    assert job is not None and [leg.id for leg in job.legs] == [f"j1-leg-{i}" for i in range(3)]
    assert job.model_dump()["leg_counts"]["pending"] == 7
    rest = list(iter_legs(reads, "j1", start=job.legs_next_cursor, page=2))
    assert [leg.id for leg in rest] == [f"j1-leg-{i}" for i in range(3, 7)]


def test_unknown_jobs_and_foreign_leg_cursors() -> None:
    """Given no job j2, its legs are None; a cursor of another job's legs is a ValueError."""
    reads = FakeReadSide()
    reads.add_job(job_record("j1"), legs=3)
    other = get_job(reads, "j1", legs=1)
    assert other is not None
    assert get_job(reads, "j2") is None
    assert get_legs(reads, "j2", cursor=None) is None
    reads.add_job(job_record("j2"), legs=1)
    with pytest.raises(ValueError):
        get_legs(reads, "j2", cursor=other.legs_next_cursor)


def test_a_list_is_newest_first_and_chained_by_cursors() -> None:
    """Given 5 jobs a second apart, when listed 2 at a time, then all come newest first."""
    reads = FakeReadSide()
    for i in range(5):
        reads.add_job(job_record(f"j{i}", T0 + timedelta(seconds=i)), legs=1)
    seen, cursor = [], None
    while True:
        page = list_jobs(reads, state=None, limit=2, cursor=cursor)
        seen += [job.id for job in page.jobs]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [f"j{i}" for i in reversed(range(5))]


@pytest.mark.parametrize("cursor", ['["2026-11-21T09:00:00", "j1"]',
                                    '["2026-11-21T09:00:00+00:00", "j\\u0000"]',
                                    '["9999-12-31T23:59:59-01:00", "j1"]', "!!"])
def test_the_api_refuses_cursors_it_did_not_give_out(cursor: str) -> None:
    """Naive times, NULs, times past year 9999 in UTC and garbage are ValueErrors."""
    with pytest.raises(ValueError):
        check_jobs_cursor(FakeReadSide(), cursor)


def test_the_dashboard_detail_and_counts() -> None:
    """A job's detail pages its legs from a position; an unknown or NUL id has none."""
    reads = FakeReadSide()
    reads.add_job(job_record("j1", state=JobState.RECONCILED), legs=5)
    detail = job_detail(reads, "j1", first=2, legs=2, notes=10, timeline=10)
    assert detail is not None and [leg.position for leg in detail.legs] == [2, 3]
    assert detail.unlisted_notes == 0 and detail.totals.legs == 5
    assert job_detail(reads, "nope", first=0, legs=2, notes=1, timeline=1) is None
    assert job_detail(reads, "j\x00", first=0, legs=2, notes=1, timeline=1) is None
    assert job_counts(reads) == {JobState.RECONCILED: 1}


def test_metrics_figures_fold_first_and_say_when_the_ledger_is_down() -> None:
    """The figures fold the tallies before reading; a ledger that is down raises
    LedgerUnavailable."""
    reads = FakeReadSide()
    reads.add_job(job_record("j1", state=JobState.AWAITING_CALLBACKS), legs=2)
    figures = ledger_figures(reads)
    assert reads.folds == 1 and figures.oldest_awaiting_callbacks == T0
    assert figures.legs == [("bambora", "pending", 2)]
    reads.down = True
    with pytest.raises(LedgerUnavailable):
        ledger_figures(reads)


def test_a_scrape_says_the_ledger_is_down_and_carries_on() -> None:
    """Given a ledger that is down, the ledger collector answers cancelflow_ledger_up 0 only."""
    from webhooks.metrics import LedgerCollector

    reads = FakeReadSide()
    reads.down = True
    families = list(LedgerCollector(reads, lambda: T0).collect())
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("cancelflow_ledger_up", [0.0])]
