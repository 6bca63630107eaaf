"""The repositories' contract, held by the SQL unit of work (SQLite and PostgreSQL) and the fake.

The use cases' tests run on ``tests.fakes.FakeUnitOfWork``; these tests prove it behaves as the
ledger does: ids stored once, compare-and-set versions, claims under a lease, attempts counted,
pages stored once, nothing written unless committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes import FakeUnitsOfWork
from tests.support import fresh_postgres_url
from worker.domain.states import JobState, LegState, Provider, Reason
from worker.ledger import create_ledger_engine, upgrade_ledger
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.providers.calls import CallRecord
from worker.services.records import (
    CallMade,
    Lease,
    LegClaim,
    LegFinish,
    NewCallbackPage,
    NewJob,
    NewLeg,
)
from worker.services.unit_of_work import UnitOfWorkFactory

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
JOB = "00000000-0000-4000-8000-000000000001"
OTHER_JOB = "00000000-0000-4000-8000-000000000002"
THIRD_JOB = "00000000-0000-4000-8000-000000000003"
LEG_IDS = [f"00000000-0000-4000-8000-00000000010{n}" for n in range(3)]


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
def uows(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitsOfWork()
        return
    url = (f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite"
           else fresh_postgres_url(request.getfixturevalue("postgres")))
    engine = create_ledger_engine(url)
    upgrade_ledger(engine)
    yield SqlUnitOfWorkFactory(engine)
    engine.dispose()


def new_job(state: JobState = JobState.ACCEPTED, key: str = "k1") -> NewJob:
    return NewJob(JOB, key, state, "ab" * 32, NOW, request={"on_cutoff": "reject"})


def new_legs(lease: Lease | None = None) -> list[NewLeg]:
    return [NewLeg(leg_id, JOB, n, Provider.PAYWALL, {"merchant_unique_code": f"c{n}"},
                   f"c{n}", NOW, lease if n == 0 else None)
            for n, leg_id in enumerate(LEG_IDS)]


def stored_job(uows: UnitOfWorkFactory, lease: Lease | None = None) -> None:
    with uows(durable=True) as uow:
        assert uow.jobs.add_many([(new_job(), new_legs(lease))])[0] is not None
        uow.commit()


def call(operation: str = "cancel", status: int = 200) -> CallMade:
    record = CallRecord("paywall", operation, status, "ok", 12.34567, "00", "req-1", "{}")
    return CallMade(operation, NOW, record, NOW + timedelta(seconds=1))


def test_a_job_is_stored_once_with_its_legs(uows: UnitOfWorkFactory) -> None:
    """Given a stored job, when its id is added again, then nothing is written and None says so."""
    lease = Lease("token-1", NOW + timedelta(seconds=60))
    with uows(durable=True) as uow:
        (stored,) = uow.jobs.add_many([(new_job(), new_legs(lease))])
        uow.commit()
    assert stored is not None and [leg.id for leg in stored] == LEG_IDS
    assert (stored[0].state, stored[0].lease_token, stored[0].attempts, stored[0].version) == (
        LegState.IN_FLIGHT, "token-1", 1, 1)
    assert (stored[1].state, stored[1].attempts, stored[1].version, stored[1].match_key) == (
        LegState.PENDING, 0, 0, "c1")
    with uows() as uow:
        assert uow.jobs.add_many([(new_job(JobState.INVALID), [])]) == [None]
        uow.commit()
    with uows(read_only=True) as uow:
        job = uow.jobs.get(JOB)
        assert job is not None and job.state is JobState.ACCEPTED
        assert job.request == {"on_cutoff": "reject"} and job.version == 0
        assert [leg.position for leg in uow.legs.of_job(JOB)] == [0, 1, 2]


def test_jobs_added_together_are_each_stored_once(uows: UnitOfWorkFactory) -> None:
    """Several jobs in one call: each new one answers its legs as stored (in order); a repeat
    within the call, or of a job stored before, answers None and writes nothing."""
    stored_job(uows)
    other = dataclasses.replace(new_job(key="k2"), id=OTHER_JOB)
    lease = Lease("token-2", NOW + timedelta(seconds=60))
    third = dataclasses.replace(new_job(key="k3"), id=THIRD_JOB)
    third_legs = [dataclasses.replace(leg, id=f"{leg.id[:-3]}2{leg.id[-2:]}", job_id=THIRD_JOB)
                  for leg in new_legs(lease)]
    with uows(durable=True) as uow:
        answers = uow.jobs.add_many([(new_job(), new_legs()), (other, []),
                                     (third, third_legs), (third, third_legs)])
        uow.commit()
    assert answers[0] is None and answers[1] == [] and answers[3] is None
    assert answers[2] is not None
    assert [leg.id for leg in answers[2]] == [leg.id for leg in third_legs]
    assert (answers[2][0].state, answers[2][0].lease_token) == (LegState.IN_FLIGHT, "token-2")
    with uows(read_only=True) as uow:
        assert [uow.jobs.get(job) is not None for job in (JOB, OTHER_JOB, THIRD_JOB)] == [
            True, True, True]
        assert len(uow.legs.of_job(THIRD_JOB)) == 3 and uow.legs.of_job(OTHER_JOB) == []


def test_nothing_is_written_unless_committed(uows: UnitOfWorkFactory) -> None:
    """A unit of work left without a commit leaves the ledger as it was."""
    with uows() as uow:
        uow.jobs.add_many([(new_job(), new_legs())])
    with uows(read_only=True) as uow:
        assert uow.jobs.get(JOB) is None and uow.legs.get(LEG_IDS[0]) is None


def test_a_leg_changes_only_at_the_version_it_was_read(uows: UnitOfWorkFactory) -> None:
    """Compare-and-set: a change at a stale version does not apply; one that applies bumps it."""
    stored_job(uows)
    with uows() as uow:
        assert uow.legs.update(LEG_IDS[1], 0, state=LegState.REJECTED,
                               reason=Reason.NOT_FOUND.value, detail="gone", updated_at=NOW)
        assert not uow.legs.update(LEG_IDS[1], 0, state=LegState.CANCELLED.value)
        uow.commit()
    with uows(read_only=True) as uow:
        leg = uow.legs.get(LEG_IDS[1])
        assert leg is not None
        assert (leg.state, leg.reason, leg.detail, leg.version) == (
            LegState.REJECTED, Reason.NOT_FOUND, "gone", 1)
        assert uow.legs.state_counts([JOB, OTHER_JOB]) == {
            JOB: {LegState.PENDING: 2, LegState.REJECTED: 1}, OTHER_JOB: {}}


def test_a_claim_wins_once_and_counts_the_attempt(uows: UnitOfWorkFactory) -> None:
    """Two claims of one leg at one version: the first wins, with its lease and attempt counted."""
    stored_job(uows)
    until = NOW + timedelta(seconds=60)
    with uows(durable=True) as uow:
        won = uow.legs.claim_many([LegClaim(LEG_IDS[0], 0, True), LegClaim(LEG_IDS[1], 0, False)],
                                  "t1", until, NOW)
        lost = uow.legs.claim_many([LegClaim(LEG_IDS[0], 0, False)], "t2", until, NOW)
        intents = uow.attempts.start_many(sorted(won), "in_flight", NOW)
        uow.commit()
    assert won == {LEG_IDS[0], LEG_IDS[1]} and lost == set()
    with uows(read_only=True) as uow:
        leg = uow.legs.get(LEG_IDS[0])
        assert leg is not None
        assert (leg.state, leg.lease_token, leg.lease_expires_at, leg.needs_resolve,
                leg.attempts, leg.version) == (LegState.IN_FLIGHT, "t1", until, True, 1, 1)
        assert [a.id for a in uow.attempts.of_leg(LEG_IDS[0])] == [intents[LEG_IDS[0]]]
        assert uow.legs.with_expired_lease(until + timedelta(seconds=1), 10)[0].id in LEG_IDS[:2]


def test_a_round_is_recorded_if_the_leg_is_still_ours(uows: UnitOfWorkFactory) -> None:
    """Finishing at the claim's version applies (lease cleared, calls counted); a stale one not."""
    stored_job(uows, Lease("t1", NOW + timedelta(seconds=60)))
    with uows() as uow:
        leg, other = uow.legs.get_many(LEG_IDS[:2])
        intents = uow.attempts.start_many([leg.id], "in_flight", NOW)
        values = {"state": LegState.CANCELLED, "reason": None, "provider_reference": "bulk-1",
                  "updated_at": NOW}
        applied = uow.legs.finish_many([LegFinish(leg, 1, values, attempts_delta=1),
                                        LegFinish(other, 5, values)])
        uow.attempts.record_round([(intents[leg.id], call())], [(leg.id, call("read"))], [])
        uow.commit()
    assert applied == {LEG_IDS[0]}
    with uows(read_only=True) as uow:
        done = uow.legs.get(LEG_IDS[0])
        assert done is not None
        assert (done.state, done.provider_reference, done.lease_token, done.attempts,
                done.version, done.target) == (LegState.CANCELLED, "bulk-1", None, 2, 2,
                                               {"merchant_unique_code": "c0"})
        attempts = uow.attempts.of_leg(LEG_IDS[0])
        assert [(a.operation, a.http_status, a.provider_code, a.latency_ms, a.response_body)
                for a in attempts] == [("cancel", 200, "00", 12.346, "{}"),
                                       ("read", 200, "00", 12.346, "{}")]


def test_attempts_outside_a_round_are_counted_on_their_leg(uows: UnitOfWorkFactory) -> None:
    """A call started then finished, and one added, each count once; a dropped intent is gone."""
    stored_job(uows)
    with uows() as uow:
        started = uow.attempts.start(LEG_IDS[2], "send_callback", NOW)
        uow.attempts.finish(started, call("send_callback", 503))
        uow.attempts.add(LEG_IDS[2], call("query"))
        dropped = uow.attempts.start_many([LEG_IDS[2]], "in_flight", NOW)[LEG_IDS[2]]
        uow.attempts.record_round([], [], [dropped])
        uow.legs.count_attempts({LEG_IDS[2]: 3, LEG_IDS[1]: 0})
        uow.commit()
    with uows(read_only=True) as uow:
        leg = uow.legs.get(LEG_IDS[2])
        assert leg is not None and leg.attempts == 5
        assert [(a.operation, a.http_status) for a in uow.attempts.of_leg(LEG_IDS[2])] == [
            ("send_callback", 503), ("query", 200)]


def test_the_job_starts_once_and_keeps_its_state(uows: UnitOfWorkFactory) -> None:
    """accepted -> in_progress only from accepted; set_state writes state and reconciliation."""
    stored_job(uows)
    with uows() as uow:
        uow.jobs.start(JOB, NOW)
        uow.jobs.set_state(JOB, JobState.RECONCILED, {"state": "matched"}, NOW)
        uow.jobs.start(JOB, NOW)
        uow.commit()
    with uows(read_only=True) as uow:
        job = uow.jobs.get(JOB, lock=True)
        assert job is not None
        assert (job.state, job.reconciliation, job.version) == (
            JobState.RECONCILED, {"state": "matched"}, 2)


def test_the_sweep_finds_what_is_due(uows: UnitOfWorkFactory) -> None:
    """Due legs by state and time, postponed ones not; waiting legs by id or code."""
    stored_job(uows)
    later = NOW + timedelta(seconds=60)
    with uows() as uow:
        assert uow.legs.update(LEG_IDS[1], 0, state=LegState.CANCELLED, next_attempt_at=NOW)
        assert uow.legs.update(LEG_IDS[2], 0, state=LegState.AWAITING_CALLBACKS,
                               provider_reference="bulk-2", next_attempt_at=NOW)
        uow.legs.postpone([LEG_IDS[1]], later)
        uow.commit()
    with uows() as uow:
        assert [leg.id for leg in uow.legs.due(NOW, [LegState.PENDING], 10)] == [LEG_IDS[0]]
        assert uow.legs.cancelled_without_evidence(NOW, 10) == []
        assert [leg.id for leg in uow.legs.cancelled_without_evidence(later, 10)] == [LEG_IDS[1]]
        assert [leg.id for leg in uow.legs.waiting_due(NOW, 10)] == [LEG_IDS[2]]
        assert [leg.id for leg in uow.legs.waiting_for("bulk-2", "other")] == [LEG_IDS[2]]
        assert uow.legs.waiting_for("bulk-9", "c2") == []
        assert {job: [row[0] for row in rows]
                for job, rows in uow.legs.evidence([JOB, OTHER_JOB]).items()} == {
            JOB: LEG_IDS, OTHER_JOB: []}


def test_a_callback_page_is_stored_once(uows: UnitOfWorkFactory) -> None:
    """The first copy of a page is kept; its totals are read back by operation id or by code."""
    stored_job(uows)
    totals = {"cancel": {"count": 1, "amount": "1.00"}}

    def page(number: int, raw: bytes) -> NewCallbackPage:
        return NewCallbackPage("bulk-1", "c0", number, 2, raw, [["c0", "p1", "1.00"]],
                               totals, NOW)

    with uows(durable=True) as uow:
        assert uow.callback_pages.add(page(1, b"first"))
        assert not uow.callback_pages.add(page(1, b"again"))
        assert uow.callback_pages.add(page(2, b"second"))
        uow.commit()
    with uows(read_only=True) as uow:
        by_id = uow.callback_pages.totals(bulk_payment_id="bulk-1", code=None)
        assert [(p.bulk_payment_id, p.page_number, p.total_pages, p.totals) for p in by_id] == [
            ("bulk-1", 1, 2, totals), ("bulk-1", 2, 2, totals)]
        assert uow.callback_pages.totals(bulk_payment_id=None, code="c0") == by_id
        assert uow.callback_pages.stored("bulk-1", "c0") == 2
        assert uow.callback_pages.count() == 2
