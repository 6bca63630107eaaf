"""Outcomes (issue 17) through the use cases and the real ledger: owed once per final state,
delivered at least once, retried within 24 h, and re-sent by the sweep when a dispatch is lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.fakes import FakeDispatcher
from tests.support import Clock, job_answer
from worker.domain.outcomes import Outcome, Rejected, ResolveOutcome
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Provider, Reason
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.ledger.views import LedgerReads
from worker.providers.calls import CallObserver
from worker.services.context import Context, RetryPolicy
from worker.services.jobs import refresh_job
from worker.services.legs import process_leg
from worker.services.outcomes import DELIVERY_WINDOW, deliver_outcome
from worker.services.ports import DeliveryError
from worker.services.submit import submit
from worker.services.sweep import sweep

NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)
HOOK = "https://producer.test/hooks/cancelflow"
REPLY = {"task": "orders.cancellation_finished", "queue": "orders"}


class RefusingDriver:
    """Every batch is CLOSED: the leg ends rejected and the job failed, in one round."""

    provider = Provider.SIXDOT50

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        return Rejected(Reason.NOT_CANCELLABLE, "batch is CLOSED")

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        raise AssertionError("never ambiguous here")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return None


@dataclass
class FakeChannels:
    """Answers webhooks from a script of statuses (an int, or an error class name)."""

    answers: list[int | str] = field(default_factory=list)
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)
    replies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def post_webhook(self, url: str, msg_id: str, when: datetime, body: bytes) -> int:
        self.posts.append((url, msg_id, body))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, str):
            raise DeliveryError(answer)
        return answer

    def publish_reply(self, task: str, queue: str, job: dict[str, Any]) -> None:
        self.replies.append((task, queue, job))


def make_ctx(engine: Engine, dispatcher: FakeDispatcher, clock: Clock,
             notify_configured: bool = True) -> Context:
    return Context(SqlUnitOfWorkFactory(engine), drivers={Provider.SIXDOT50: RefusingDriver()},
                   dispatcher=dispatcher, retry=RetryPolicy(2, 300, 8), lease_seconds=60,
                   clock=clock, rng=lambda: 1.0, notify_configured=notify_configured,
                   read_job=lambda job_id: job_answer(LedgerReads(engine), job_id))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def ctx(engine: Engine, dispatcher: FakeDispatcher, clock: Clock) -> Context:
    return make_ctx(engine, dispatcher, clock)


def finished_job(ctx: Context, dispatcher: FakeDispatcher, **outcomes: Any) -> str:
    """A job with the given outcome fields, run to its final state (failed)."""
    request = {"idempotency_key": f"k-{len(dispatcher.legs)}-{sorted(outcomes)}",
               "legs": [{"provider": "sixdot50",
                         "batch_id": "f945d71c-b00f-4e77-8175-253093157a2f"}], **outcomes}
    job_id = submit(ctx, (), {"request": request}).job_id
    process_leg(ctx, dispatcher.legs[-1][0])
    return job_id


def notifications(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    job = job_answer(LedgerReads(engine), job_id)
    assert job is not None
    return job["notifications"]  # type: ignore[no-any-return]


def test_notify_url_without_a_secret_makes_the_job_invalid(engine: Engine,
                                                           dispatcher: FakeDispatcher) -> None:
    """Given no NOTIFY_SECRET, a request with notify_url is kept invalid, with the reason."""
    ctx = make_ctx(engine, dispatcher, Clock(NOON), notify_configured=False)
    request = {"idempotency_key": "no-secret", "notify_url": HOOK,
               "legs": [{"provider": "bambora", "merchant": "T1", "payment_reference": "r"}]}
    result = submit(ctx, (), {"request": request})
    job = job_answer(LedgerReads(engine), result.job_id)
    assert job is not None and job["state"] == "invalid"
    assert [e["field"] for e in job["errors"]] == ["notify_url"]
    assert "CANCELFLOW_NOTIFY_SECRET" in job["errors"][0]["error"]
    assert dispatcher.legs == []


def test_a_final_job_owes_each_outcome_once_and_dispatches_it(
    engine: Engine, dispatcher: FakeDispatcher, clock: Clock, ctx: Context
) -> None:
    """When the job ends, a webhook and a reply are owed in its transaction and dispatched;
    recomputing the job again owes nothing more."""
    job_id = finished_job(ctx, dispatcher, notify_url=HOOK, reply_to=REPLY)
    assert len(dispatcher.outcomes) == 2
    listed = notifications(engine, job_id)
    assert [(n["kind"], n["final_state"], n["status"], n["attempts"]) for n in listed] == [
        ("reply", "failed", "pending", 0), ("webhook", "failed", "pending", 0)]
    with SqlUnitOfWorkFactory(engine)() as uow:
        owed: list[str] = []
        refresh_job(uow, job_id, clock(), owed)
        uow.commit()
    assert owed == [] and len(notifications(engine, job_id)) == 2


def test_a_webhook_answered_500_then_200_is_delivered_on_the_second_attempt(
    engine: Engine, dispatcher: FakeDispatcher, clock: Clock, ctx: Context
) -> None:
    """A 500 schedules the next attempt after the backoff; the 200 that follows delivers it."""
    job_id = finished_job(ctx, dispatcher, notify_url=HOOK)
    delivery_id = dispatcher.outcomes[0][0]
    channels = FakeChannels([500, 200])
    assert deliver_outcome(ctx, channels, delivery_id) == 2.0  # backoff(0) * rng 1.0
    first = notifications(engine, job_id)[0]
    assert (first["status"], first["attempts"], first["last_http_status"]) == ("pending", 1, 500)
    assert deliver_outcome(ctx, channels, delivery_id) is None  # not due yet: nothing sent
    assert len(channels.posts) == 1
    clock.now += timedelta(seconds=2)
    assert deliver_outcome(ctx, channels, delivery_id) is None
    done = notifications(engine, job_id)[0]
    assert (done["status"], done["attempts"], done["last_http_status"]) == ("delivered", 2, 200)
    assert done["delivered_at"] is not None and done["next_attempt_at"] is None
    assert [msg_id for _, msg_id, _ in channels.posts] == [f"{job_id}:failed"] * 2
    assert deliver_outcome(ctx, channels, delivery_id) is None and len(channels.posts) == 2
    job = job_answer(LedgerReads(engine), job_id)
    assert job is not None
    [event] = [e for e in job["events"] if e["type"].startswith("notification")]
    assert event["type"] == "notification_delivered"
    assert event["details"]["attempts"] == 2 and event["details"]["last"] == "HTTP 200"


def test_a_webhook_never_answered_ends_failed_after_24_hours(
    engine: Engine, dispatcher: FakeDispatcher, clock: Clock, ctx: Context
) -> None:
    """Connection errors are retried until 24 h after the job ended; then the delivery fails."""
    job_id = finished_job(ctx, dispatcher, notify_url=HOOK)
    delivery_id = dispatcher.outcomes[0][0]
    channels = FakeChannels(["ConnectError"] * 1000)
    ended = clock.now
    while (countdown := deliver_outcome(ctx, channels, delivery_id)) is not None:
        clock.now += timedelta(seconds=countdown)
    assert clock.now == ended + DELIVERY_WINDOW
    last = notifications(engine, job_id)[0]
    assert (last["status"], last["last_error"], last["next_attempt_at"]) == (
        "failed", "ConnectError", None)
    assert last["attempts"] == len(channels.posts)
    job = job_answer(LedgerReads(engine), job_id)
    assert job is not None
    assert [e["type"] for e in job["events"]] == ["notification_failed"]


def test_a_reply_whose_dispatch_was_lost_is_published_by_the_sweep(
    engine: Engine, dispatcher: FakeDispatcher, clock: Clock, ctx: Context
) -> None:
    """Given a final job whose reply message was never sent (the worker died after the commit),
    the sweep dispatches it again and it is published with kwargs={"job": JOB}."""
    job_id = finished_job(ctx, dispatcher, reply_to=REPLY)
    delivery_id = dispatcher.outcomes[0][0]
    dispatcher.outcomes.clear()  # the message is lost
    sweep(ctx)
    assert dispatcher.outcomes == []  # within the lease, the message may still be on its way
    clock.now += timedelta(seconds=61)
    sweep(ctx)
    assert dispatcher.outcomes == [(delivery_id, 0)]
    sweep(ctx)
    assert len(dispatcher.outcomes) == 1  # dispatched once a lease, not once a sweep
    channels = FakeChannels()
    assert deliver_outcome(ctx, channels, delivery_id) is None
    [(task, queue, job)] = channels.replies
    assert (task, queue) == (REPLY["task"], REPLY["queue"])
    assert job["id"] == job_id and job["state"] == "failed"
    assert notifications(engine, job_id)[0]["status"] == "delivered"


def test_two_copies_of_one_delivery_send_once(dispatcher: FakeDispatcher, ctx: Context) -> None:
    """A delivery dispatched twice (the sweep's copy and the original) is sent once."""
    finished_job(ctx, dispatcher, reply_to=REPLY)
    delivery_id = dispatcher.outcomes[0][0]
    channels = FakeChannels()
    deliver_outcome(ctx, channels, delivery_id)
    deliver_outcome(ctx, channels, delivery_id)
    assert len(channels.replies) == 1
