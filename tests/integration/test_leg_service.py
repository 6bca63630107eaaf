"""The use cases over the ledger in memory (``tests.fakes``), with a scripted provider driver."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.fakes import (
    BATCH,
    START,
    FakeDispatcher,
    FakeUnitsOfWork,
    ScriptedDriver,
    make_ctx,
    message,
)
from tests.support import Clock
from worker.domain.outcomes import Cancelled, Rejected, StillCancellable
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import JobState, LegState, Reason
from worker.domain.task_label import TaskLabel
from worker.providers.calls import CallObserver
from worker.providers.errors import ProviderUnavailable, TransportError
from worker.services.legs import process_leg
from worker.services.submit import Message, accept, submit
from worker.services.sweep import sweep


def test_submit_creates_job_and_dispatches_its_legs(uows: FakeUnitsOfWork,
                                                    dispatcher: FakeDispatcher) -> None:
    """A valid message becomes an accepted job with one pending leg, dispatched once."""
    result = submit(make_ctx(uows, dispatcher, None), (), message())
    assert result.created and result.state is JobState.ACCEPTED
    assert len(dispatcher.legs) == 1
    assert uows.only_leg(result.job_id).state == "pending"


def test_cancel_then_summary_reconciles(uows: FakeUnitsOfWork, dispatcher: FakeDispatcher) -> None:
    """Given a cancellable batch, one round cancels it, reads the summary and reconciles."""
    driver = ScriptedDriver([Cancelled(already=False, reference=BATCH)])
    ctx = make_ctx(uows, dispatcher, driver)
    job_id = submit(ctx, (), message(expect={"count": 2, "amount": "200.00"})).job_id
    step = process_leg(ctx, dispatcher.legs[0][0])
    job = uows.job(job_id)
    assert step.state is LegState.CANCELLED
    assert job.state == "reconciled"
    assert uows.only_leg(job_id).attempts == 2  # the cancel and the summary read
    assert job.reconciliation == {"state": "matched", "differences": []}


def test_expect_mismatch_ends_the_job_mismatch(uows: FakeUnitsOfWork,
                                               dispatcher: FakeDispatcher) -> None:
    """Totals that disagree with what the legs cancelled end the job in mismatch."""
    ctx = make_ctx(uows, dispatcher, ScriptedDriver([Cancelled(already=False)]))
    job_id = submit(ctx, (), message(expect={"count": 3, "amount": "300.00"})).job_id
    process_leg(ctx, dispatcher.legs[0][0])
    job = uows.job(job_id)
    assert job.state == "mismatch"
    assert {d["field"] for d in job.reconciliation["differences"]} == {
        "cancelled_count", "cancelled_amount"}


def test_transient_errors_retry_then_succeed(uows: FakeUnitsOfWork,
                                             dispatcher: FakeDispatcher) -> None:
    """503, 503, then success: the leg ends cancelled after three cancel attempts."""
    unavailable = ProviderUnavailable("503", provider="sixdot50", operation="cancel_batch")
    driver = ScriptedDriver([unavailable, unavailable, Cancelled(already=False)])
    clock = Clock(START)
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message()).job_id
    leg_id = dispatcher.legs[0][0]
    delays = []
    for _ in range(3):
        step = process_leg(ctx, leg_id)
        if step.retry_in is not None:
            delays.append(step.retry_in)
            clock.now += timedelta(seconds=step.retry_in)
    assert delays == [2.0, 4.0]
    assert driver.calls.count("cancel_batch") == 3
    assert uows.only_leg(job_id).state == "cancelled"


def test_retries_exhausted_ends_failed(uows: FakeUnitsOfWork, dispatcher: FakeDispatcher) -> None:
    """A provider that stays down ends the leg failed/retries_exhausted after max attempts."""
    down = ProviderUnavailable("503", provider="sixdot50", operation="cancel_batch")
    clock = Clock(START)
    ctx = make_ctx(uows, dispatcher, ScriptedDriver([down, down, down]), clock, max_attempts=3)
    job_id = submit(ctx, (), message()).job_id
    for _ in range(3):
        step = process_leg(ctx, dispatcher.legs[0][0])
        clock.now += timedelta(seconds=step.retry_in or 0)
    leg = uows.only_leg(job_id)
    assert (leg.state, leg.reason) == ("failed", "retries_exhausted")
    assert uows.job(job_id).state == "failed"


def test_rejection_is_final_without_retry(uows: FakeUnitsOfWork,
                                          dispatcher: FakeDispatcher) -> None:
    """A permanent refusal ends the leg rejected with its reason, and the job failed."""
    driver = ScriptedDriver([Rejected(Reason.NOT_CANCELLABLE, "batch is CLOSED")])
    ctx = make_ctx(uows, dispatcher, driver)
    job_id = submit(ctx, (), message()).job_id
    step = process_leg(ctx, dispatcher.legs[0][0])
    assert step.retry_in is None
    leg = uows.only_leg(job_id)
    assert (leg.state, leg.reason) == ("rejected", "not_cancellable")
    assert uows.job(job_id).state == "failed"


def test_ambiguous_timeout_is_resolved_by_a_read(uows: FakeUnitsOfWork,
                                                 dispatcher: FakeDispatcher) -> None:
    """A timeout after send leaves the leg unknown; the next round reads before cancelling."""
    lost = TransportError("timeout", provider="sixdot50", operation="cancel_batch",
                          ambiguous=True)
    driver = ScriptedDriver([lost], resolves=[Cancelled(already=False, reference=BATCH)])
    clock = Clock(START)
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message()).job_id
    leg_id = dispatcher.legs[0][0]
    step = process_leg(ctx, leg_id)
    assert uows.only_leg(job_id).state == "unknown"
    clock.now += timedelta(seconds=step.retry_in or 0)
    process_leg(ctx, leg_id)
    assert driver.calls == ["cancel_batch", "get_batch", "get_batch"]
    assert uows.only_leg(job_id).state == "cancelled"


def test_read_finding_target_untouched_then_cancels(uows: FakeUnitsOfWork,
                                                    dispatcher: FakeDispatcher) -> None:
    """If the read after an ambiguous answer finds the batch still DRAFT, cancel is safe."""
    lost = TransportError("reset", provider="sixdot50", operation="cancel_batch", ambiguous=True)
    driver = ScriptedDriver([lost, Cancelled(already=False)], resolves=[StillCancellable()])
    clock = Clock(START)
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message()).job_id
    step = process_leg(ctx, dispatcher.legs[0][0])
    clock.now += timedelta(seconds=step.retry_in or 0)
    process_leg(ctx, dispatcher.legs[0][0])
    assert driver.calls == ["cancel_batch", "get_batch", "cancel_batch", "get_batch"]
    assert uows.only_leg(job_id).state == "cancelled"


def test_same_key_three_times_calls_the_provider_once(uows: FakeUnitsOfWork,
                                                      dispatcher: FakeDispatcher) -> None:
    """Resubmitting a key answers the existing job; a finished leg is never dispatched again."""
    driver = ScriptedDriver([Cancelled(already=False)])
    ctx = make_ctx(uows, dispatcher, driver)
    first = submit(ctx, (), message())
    process_leg(ctx, dispatcher.legs[0][0])
    again = [submit(ctx, (), message()) for _ in range(2)]
    assert {r.job_id for r in again} == {first.job_id}
    assert not any(r.created for r in again)
    assert len(dispatcher.legs) == 1
    assert driver.calls.count("cancel_batch") == 1


def test_a_leg_runs_once_even_if_dispatched_twice(uows: FakeUnitsOfWork,
                                                  dispatcher: FakeDispatcher) -> None:
    """A duplicate message for a finished leg changes nothing and calls nobody."""
    driver = ScriptedDriver([Cancelled(already=False)])
    ctx = make_ctx(uows, dispatcher, driver)
    submit(ctx, (), message())
    leg_id = dispatcher.legs[0][0]
    process_leg(ctx, leg_id)
    assert process_leg(ctx, leg_id).state is None
    assert driver.calls.count("cancel_batch") == 1


def test_invalid_messages_become_invalid_jobs(uows: FakeUnitsOfWork,
                                              dispatcher: FakeDispatcher) -> None:
    """Malformed messages are kept as invalid jobs with errors; nothing is dispatched."""
    ctx = make_ctx(uows, dispatcher, None)
    cases = [
        ((), {}),
        ((), {"request": "not an object"}),
        (("positional",), {"request": {}}),
        ((), {"request": {"idempotency_key": "bad-1", "legs": [{"provider": "acme"}]}}),
    ]
    results = [submit(ctx, args, kwargs) for args, kwargs in cases]
    assert all(r.state is JobState.INVALID for r in results)
    assert len({r.job_id for r in results}) == 4
    job = uows.job(results[3].job_id)
    assert job.idempotency_key == "bad-1" and job.errors
    assert dispatcher.legs == []


def test_missing_provider_settings_reject_the_leg(uows: FakeUnitsOfWork,
                                                  dispatcher: FakeDispatcher) -> None:
    """A provider without settings is refused per leg, never a crash."""
    ctx = make_ctx(uows, dispatcher, None)
    job_id = submit(ctx, (), message()).job_id
    process_leg(ctx, dispatcher.legs[0][0])
    leg = uows.only_leg(job_id)
    assert (leg.state, leg.reason) == ("rejected", "provider_not_configured")


def test_sweep_takes_over_a_leg_whose_worker_died(uows: FakeUnitsOfWork,
                                                  dispatcher: FakeDispatcher) -> None:
    """A leg left in flight past its lease is re-dispatched and resolved by a read."""
    driver = ScriptedDriver([], resolves=[Cancelled(already=False)])
    clock = Clock(START)
    ctx = make_ctx(uows, dispatcher, driver, clock)
    job_id = submit(ctx, (), message()).job_id
    leg_id = dispatcher.legs[0][0]
    from worker.services.legs import claim_leg

    assert claim_leg(ctx, leg_id) is not None  # a worker took it, then died mid-call
    clock.now += timedelta(seconds=61)
    dispatcher.legs.clear()
    assert sweep(ctx).expired_leases == 1
    assert dispatcher.legs == [(leg_id, 0)]
    # Both dispatches name the job and provider (Flower's args), not the leg id.
    assert dispatcher.labels == [TaskLabel(job_id, "sixdot50", 1)] * 2
    process_leg(ctx, leg_id)
    assert driver.calls[0] == "get_batch"
    assert uows.only_leg(job_id).state == "cancelled"
    # The dead worker's call stays on record, without an outcome: it may have been made.
    recorded = [(a.operation, a.outcome) for a in uows.attempts_of(leg_id)]
    assert recorded == [("in_flight", None), ("get_batch", "ok"), ("get_batch", "ok")]


def test_a_failed_summary_read_is_read_again_by_the_sweep(uows: FakeUnitsOfWork,
                                                          dispatcher: FakeDispatcher) -> None:
    """Cancelled but its figures unread: the job waits, the sweep asks for the read, and the
    read reconciles the job."""
    from worker.services.legs import refresh_evidence

    class FlakyReads(ScriptedDriver):
        reads = 0

        def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
            self.reads += 1
            if self.reads == 1:
                raise ProviderUnavailable("500", provider="sixdot50", operation="get_batch")
            return super().read_evidence(target, calls)

    ctx = make_ctx(uows, dispatcher, FlakyReads([Cancelled(already=False)]))
    job_id = submit(ctx, (), message()).job_id
    leg_id = dispatcher.legs[0][0]
    process_leg(ctx, leg_id)
    assert uows.job(job_id).state == "in_progress"
    assert sweep(ctx).evidence_reads == 1 and dispatcher.evidence == [leg_id]
    assert refresh_evidence(ctx, leg_id)
    assert uows.job(job_id).state == "reconciled"


def test_the_submit_task_cancels_the_first_batch_itself(uows: FakeUnitsOfWork,
                                                        dispatcher: FakeDispatcher) -> None:
    """With inline_first_round, a one-leg job is cancelled by its submit task: nothing else is
    dispatched, the attempt row was written before the call, and the job reconciles."""
    import dataclasses

    driver = ScriptedDriver([Cancelled(already=False)])
    ctx = dataclasses.replace(make_ctx(uows, dispatcher, driver), inline_first_round=True)
    job_id = submit(ctx, (), message()).job_id
    job = uows.job(job_id)
    assert job.state == "reconciled"
    assert dispatcher.legs == [] and driver.calls == ["cancel_batch", "get_batch"]
    calls = [(a.operation, a.outcome) for a in uows.attempts_of(uows.only_leg(job_id).id)]
    assert calls == [("cancel_batch", "ok"), ("get_batch", "ok")]


def test_legs_beyond_the_first_batch_are_dispatched(uows: FakeUnitsOfWork,
                                                    dispatcher: FakeDispatcher) -> None:
    """A job larger than one batch: the first batch runs inline, the rest go to the queue."""
    import dataclasses

    legs = [{"provider": "sixdot50", "batch_id": str(uuid.uuid4())} for _ in range(11)]
    driver = ScriptedDriver([Cancelled(already=False) for _ in range(11)])
    ctx = dataclasses.replace(make_ctx(uows, dispatcher, driver), inline_first_round=True)
    job_id = submit(ctx, (), {"request": {"idempotency_key": "big", "legs": legs}}).job_id
    assert driver.calls.count("cancel_batch") == 8  # the default bound per provider
    assert len(dispatcher.legs) == 3
    for leg_id, _ in dispatcher.legs:
        process_leg(ctx, leg_id)
    assert uows.job(job_id).state == "reconciled"


def test_messages_accepted_together_share_one_durable_transaction(
        uows: FakeUnitsOfWork, dispatcher: FakeDispatcher) -> None:
    """The worker's tasks store the messages that arrive together in one step: two jobs, a key
    repeated within the step (it finds the job stored just before it) and an invalid message,
    in one durable transaction; with inline_first_round each new job gets its own claim."""
    import dataclasses

    ctx = dataclasses.replace(make_ctx(uows, dispatcher, None), inline_first_round=True)
    made = len(uows.made)
    accepted = accept(ctx, [Message((), message("a")), Message((), message("b")),
                            Message((), message("a")), Message((), {"request": "no"}, "d" * 64)])
    assert len(uows.made) == made + 1 and uows.made[-1].durable
    assert [(a.submitted.created, a.submitted.state.value) for a in accepted] == [
        (True, "in_progress"), (True, "in_progress"), (False, "in_progress"), (True, "invalid")]
    assert accepted[2].submitted.job_id == accepted[0].submitted.job_id
    assert [len(a.claims) for a in accepted] == [1, 1, 0, 0]
    assert accepted[0].claims[0].token != accepted[1].claims[0].token
    assert uows.job(accepted[3].submitted.job_id).errors
