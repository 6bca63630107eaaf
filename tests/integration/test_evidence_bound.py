"""A leg whose figures never add up ends with the evidence in hand: the use cases on the real
ledger (SQLite and PostgreSQL), the real 6DOT50 adapter over httpx.MockTransport fed seed 000's
body, and a settable clock, so that CALLBACK_TIMEOUT_SECONDS passes without sleeping."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from tests.fakes import START, FakeDispatcher, make_ctx
from tests.seeds import example_body
from tests.support import Clock, job_answer
from worker.domain.outcomes import Cancelled, Outcome, ResolveOutcome
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.ledger.views import LedgerReads
from worker.providers.calls import CallObserver
from worker.providers.sixdot50.adapter import SixDot50
from worker.providers.sixdot50.driver import SixDot50Driver
from worker.services.context import Context
from worker.services.evidence import EVIDENCE_MAX_READS, read_interval
from worker.services.legs import process_leg, refresh_evidence
from worker.services.submit import submit
from worker.services.sweep import sweep

TIMEOUT = 60.0  # CALLBACK_TIMEOUT_SECONDS, small as a test may set it


@dataclass
class SixDot50Answers:
    """6DOT50 over MockTransport: every batch call answers seed 000's batch, with the summary
    one payment short of what the batch holds unless ``settled`` says it has settled."""

    settled: bool = False
    # No figures at all: every answer comes without its summary (the field is optional).
    without_summary: bool = False
    calls: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        batch: dict[str, Any] = copy.deepcopy(example_body("000", having="summary"))
        summary = batch["summary"]
        summary["cancelledCount"], summary["cancelledAmount"] = 184, 18400
        if self.settled:
            summary["settledCount"], summary["settledAmount"] = 1, 100
        if self.without_summary:
            del batch["summary"]
        return batch

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return httpx.Response(200, json={"success": True, "token": "t",
                                             "expiresAt": "2099-01-01T00:00:00"})
        self.calls.append(request.method)
        return httpx.Response(200, content=json.dumps(self.body()).encode())

    def driver(self) -> SixDot50Driver:
        client = httpx.Client(transport=httpx.MockTransport(self))
        return SixDot50Driver(SixDot50(client, "https://pay", SecretStr("k"), SecretStr("s")))


@dataclass
class PaywallCancelled:
    """A Paywall leg that cancels all 185 payments at once (its callbacks are not the point)."""

    provider: Provider = Provider.PAYWALL

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        return Cancelled(already=False, reference="81234", evidence=LegEvidence(
            Source.PAYWALL_CALLBACKS, "ZAR", Figures(185, Decimal(18500)),
            Reported(cancelled_count=185, cancelled_amount=Decimal(18500))))

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        raise AssertionError("never ambiguous here")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return None


def context(engine: Engine, dispatcher: FakeDispatcher, sixdot50: SixDot50Answers,
            clock: Clock) -> Context:
    base = make_ctx(SqlUnitOfWorkFactory(engine), dispatcher, None, clock)
    return dataclasses.replace(base, callback_timeout_seconds=TIMEOUT, drivers={
        Provider.SIXDOT50: sixdot50.driver(), Provider.PAYWALL: PaywallCancelled()})


def mirrored_job(ctx: Context, dispatcher: FakeDispatcher) -> tuple[str, str]:
    """Submit the mirrored pair and run both legs once; the job id and the 6DOT50 leg's id."""
    request = {"idempotency_key": "mirror-1", "mirror": True, "legs": [
        {"provider": "sixdot50", "batch_id": example_body("000", having="summary")["id"]},
        {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "bulk-1",
         "payment_date": "2026-11-21"}]}
    job_id = submit(ctx, (), {"request": request}).job_id
    for leg_id, _countdown in list(dispatcher.legs):
        process_leg(ctx, leg_id)
    return job_id, job_of(ctx, job_id)["legs"][0]["id"]


def job_of(ctx: Context, job_id: str) -> dict[str, Any]:
    """The job as the API shows it."""
    assert isinstance(ctx.uow_factory, SqlUnitOfWorkFactory)
    job = job_answer(LedgerReads(ctx.uow_factory.engine), job_id)
    assert job is not None
    return job


def test_a_summary_one_payment_short_ends_the_job_mismatch_at_the_timeout(
    engine: Engine, dispatcher: FakeDispatcher
) -> None:
    """Given mirrored 6DOT50 and Paywall legs both cancelled, the summary one payment short:
    the job waits, reads the summary an interval apart, and CALLBACK_TIMEOUT_SECONDS after the
    cancel ends `mismatch` with the summary in hand and the difference, never in_progress."""
    clock, sixdot50 = Clock(START), SixDot50Answers()
    ctx = context(engine, dispatcher, sixdot50, clock)
    cancelled_at = clock.now
    job_id, leg_id = mirrored_job(ctx, dispatcher)
    assert sixdot50.calls == ["POST", "GET"]  # the answer did not add up: read once more
    assert job_of(ctx, job_id)["state"] == "in_progress"
    assert sweep(ctx).evidence_reads == 0  # figures in hand: the next read is an interval away

    ended_at, reads = None, 0
    for _ in range(3 * EVIDENCE_MAX_READS):  # a bound on the test itself
        clock.now += read_interval(TIMEOUT)
        assert sweep(ctx).evidence_reads == 1
        assert sweep(ctx).evidence_reads == 0  # a read just asked for is not asked again
        for leg in dispatcher.evidence[reads:]:
            refresh_evidence(ctx, leg)
        reads = len(dispatcher.evidence)
        if job_of(ctx, job_id)["state"] != "in_progress":
            ended_at = clock.now
            break

    job = job_of(ctx, job_id)
    assert ended_at is not None and (ended_at - cancelled_at).total_seconds() == TIMEOUT
    assert reads == EVIDENCE_MAX_READS
    assert job["state"] == "mismatch"
    leg = job["legs"][0]
    assert leg["state"] == "cancelled" and "did not account for every payment" in leg["detail"]
    assert leg["reconciliation"]["reported"]["cancelled_count"] == 184
    assert {"leg": leg_id, "field": "cancelled_count", "expected": "185",
            "reported": "184"} in job["reconciliation"]["differences"]
    with SqlUnitOfWorkFactory(engine)(read_only=True) as uow:
        bodies = [a.response_body for a in uow.attempts.of_leg(leg_id)]
    assert len(bodies) == 2 + reads and all('"summary"' in (b or "") for b in bodies)


def test_figures_that_come_to_add_up_end_the_wait_at_once(
    engine: Engine, dispatcher: FakeDispatcher
) -> None:
    """The last payment settles during the wait: the next read ends it, long before the
    timeout, with those figures and no note of a timeout."""
    clock, sixdot50 = Clock(START), SixDot50Answers()
    ctx = context(engine, dispatcher, sixdot50, clock)
    job_id, leg_id = mirrored_job(ctx, dispatcher)
    sixdot50.settled = True
    clock.now += read_interval(TIMEOUT)

    sweep(ctx)
    assert dispatcher.evidence == [leg_id] and refresh_evidence(ctx, leg_id)

    leg = job_of(ctx, job_id)["legs"][0]
    assert leg["reconciliation"]["reported"]["settled_count"] == 1
    assert "did not account" not in (leg["detail"] or "")
    assert job_of(ctx, job_id)["state"] == "mismatch"  # one payment settled, not cancelled


def test_the_number_of_reads_is_capped_too(engine: Engine, dispatcher: FakeDispatcher) -> None:
    """Reads asked for again and again before the deadline (duplicated messages) still end the
    wait at the cap, with the evidence in hand."""
    clock, sixdot50 = Clock(START), SixDot50Answers()
    ctx = context(engine, dispatcher, sixdot50, clock)
    job_id, leg_id = mirrored_job(ctx, dispatcher)

    ended = [refresh_evidence(ctx, leg_id) for _ in range(EVIDENCE_MAX_READS)]

    assert ended == [False] * (EVIDENCE_MAX_READS - 1) + [True]
    assert job_of(ctx, job_id)["state"] == "mismatch"
    assert not refresh_evidence(ctx, leg_id)  # over: a late duplicate changes nothing


def test_a_leg_that_never_gets_figures_ends_the_job_mismatch_at_the_timeout(
    engine: Engine, dispatcher: FakeDispatcher
) -> None:
    """Given a cancel and every read answered without a summary: the wait still ends
    CALLBACK_TIMEOUT_SECONDS after the cancel, the job `mismatch` with a difference that says
    the figures are missing, never in_progress."""
    clock, sixdot50 = Clock(START), SixDot50Answers(without_summary=True)
    ctx = context(engine, dispatcher, sixdot50, clock)
    job_id, leg_id = mirrored_job(ctx, dispatcher)
    assert job_of(ctx, job_id)["state"] == "in_progress"

    for _ in range(3 * EVIDENCE_MAX_READS):  # a bound on the test itself
        clock.now += read_interval(TIMEOUT)
        sweep(ctx)
        for leg in dispatcher.evidence:
            refresh_evidence(ctx, leg)
        dispatcher.evidence.clear()
        if job_of(ctx, job_id)["state"] != "in_progress":
            break

    job = job_of(ctx, job_id)
    assert job["state"] == "mismatch"
    leg = job["legs"][0]
    assert leg["state"] == "cancelled" and "no figures within" in leg["detail"]
    assert leg["reconciliation"]["reported"] is None
    assert {"leg": leg_id, "field": "figures", "expected": "provider figures",
            "reported": "none"} in job["reconciliation"]["differences"]
