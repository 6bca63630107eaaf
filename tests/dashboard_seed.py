"""Seeding the dashboard's ledger: jobs in every state through the real use cases, with
provider drivers that answer from a script (the dashboard's tests and its browser test)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from tests.fakes import FakeDispatcher
from worker.domain.outcomes import AwaitingCallbacks, Cancelled, Outcome, Rejected
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.providers.calls import CallObserver, CallRecord
from worker.providers.paywall.callbacks import expected_hash, parse_callback
from worker.services.callbacks import settle_leg, store_page
from worker.services.context import Context, RetryPolicy
from worker.services.legs import process_leg, process_legs
from worker.services.submit import submit

BIG_JOB_LEGS = 250

# Seeding: real services against the ledger, with provider drivers that answer from a script.


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.5) -> None:
        self.now += timedelta(seconds=seconds)


def _key(target: dict[str, str]) -> str:
    return target.get("batch_id") or target.get("payment_reference") or target[
        "merchant_unique_code"]


@dataclass
class ScriptedDriver:
    """Answers each target from a script; records every call as the real adapters do."""

    provider: Provider
    operation: str
    outcomes: Mapping[str, tuple[Outcome, int]]
    evidence: Mapping[str, LegEvidence] = field(default_factory=dict)

    def _observe(self, calls: CallObserver, operation: str, status: int, outcome: str) -> None:
        handle = calls.before(operation)
        calls.after(handle, CallRecord(self.provider.value, operation, status, outcome, 42.5))

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        outcome, status = self.outcomes[_key(target)]
        label = outcome.reason.value if isinstance(outcome, Rejected) else "ok"
        self._observe(calls, self.operation, status, label)
        return outcome

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> Outcome:
        raise AssertionError("no ambiguous answers in this script")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        self._observe(calls, "get_" + self.operation.removeprefix("cancel_"), 200, "ok")
        return self.evidence.get(_key(target))


BATCH_MISMATCH = "f945d71c-b00f-4e77-8175-253093157a2f"
BATCH_MATCHED = "0b7e9a52-3d1c-4c55-9a43-5f1f3c1e2d10"
BULK_ID = "81234"
PAYWALL_CODE = "bulk-4714"


def _drivers() -> dict[Provider, Any]:
    zar = {batch: LegEvidence(Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
                              Reported(cancelled_count=2, cancelled_amount=Decimal("200.00")))
           for batch in (BATCH_MISMATCH, BATCH_MATCHED)}
    paid = LegEvidence(Source.BAMBORA_PAYMENT, "EUR", Figures(1, Decimal("50.00")),
                       Reported(cancelled_count=1, cancelled_amount=Decimal("50.00")))
    bambora: dict[str, tuple[Outcome, int]] = {
        f"evt-{i}": (Cancelled(already=False), 200) for i in range(BIG_JOB_LEGS)}
    bambora["ref-1"] = (Cancelled(already=False), 200)
    bambora["ref-2"] = (Rejected(Reason.NOT_CANCELLABLE,
                                 "payment ref-2 is captured; refund it instead"), 409)
    return {
        Provider.SIXDOT50: ScriptedDriver(
            Provider.SIXDOT50, "cancel_batch",
            {batch: (Cancelled(already=False, reference=batch), 200) for batch in zar}, zar),
        Provider.BAMBORA: ScriptedDriver(Provider.BAMBORA, "cancel_payment", bambora,
                                         dict.fromkeys(bambora, paid)),
        Provider.PAYWALL: ScriptedDriver(
            Provider.PAYWALL, "cancel_bulk",
            {PAYWALL_CODE: (AwaitingCallbacks(reference=BULK_ID, expected_count=2), 200)}),
    }


def _callback_page(number: int, payment: dict[str, Any]) -> bytes:
    return json.dumps({
        "Type": "BulkCancel", "BulkPaymentId": int(BULK_ID), "MerchantUniqueCode": PAYWALL_CODE,
        "Hash": expected_hash(b"any-key", BULK_ID, PAYWALL_CODE), "IsCompressed": False,
        "PageNumber": number, "TotalPages": 2, "HasMorePages": number < 2,
        "Payments": [{"Scope": "cancel", "ErrorCode": 0, "ErrorMessage": None, **payment}],
    }).encode()


def seed_ledger(engine: Engine, start: datetime | None = None) -> dict[str, str]:
    """Jobs in every final state (and a big one in progress); their ids by idempotency key."""
    clock = Clock(start or datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    dispatcher = FakeDispatcher()
    ctx = Context(SqlUnitOfWorkFactory(engine), _drivers(), dispatcher, RetryPolicy(1, 1, 3),
                  60, clock=clock, rng=lambda: 1.0)
    sixdot50 = "sixdot50"

    def job(key: str, legs: list[dict[str, Any]], **extra: Any) -> str:
        clock.tick(60)
        before = len(dispatcher.legs)
        job_id = submit(ctx, (), {"request": {"idempotency_key": key, "legs": legs,
                                              **extra}}).job_id
        for leg_id, _ in dispatcher.legs[before:before + 5]:
            clock.tick()
            process_leg(ctx, leg_id)
        return job_id

    ids = {
        "order-4711-cancel": job("order-4711-cancel",
                                 [{"provider": sixdot50, "batch_id": BATCH_MISMATCH}],
                                 expect={"count": 3, "amount": "300.00"}),
        "order-4712-cancel": job("order-4712-cancel",
                                 [{"provider": sixdot50, "batch_id": BATCH_MATCHED}],
                                 expect={"count": 2, "amount": "200.00"}),
        "order-4713-cancel": job("order-4713-cancel", [
            {"provider": "bambora", "merchant": "T123456789", "payment_reference": "ref-1"},
            {"provider": "bambora", "merchant": "T123456789", "payment_reference": "ref-2"}]),
        "order-4714-paywall": job("order-4714-paywall", [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": PAYWALL_CODE,
             "payment_date": "2026-11-21"}]),
        "order-4715-bad": job("order-4715-bad", [{"provider": "acme"}]),
        "event-4716-called-off": job("event-4716-called-off", [
            {"provider": "bambora", "merchant": "T123456789", "payment_reference": f"evt-{i}"}
            for i in range(BIG_JOB_LEGS)]),
    }
    # The Paywall bulk's results come back as two callback pages: one payment cancelled, one not.
    pages = [_callback_page(1, {"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 10.25,
                                "Status": 4}),
             _callback_page(2, {"MerchantUniqueCode": "p2", "PaymentId": 2, "Amount": 5,
                                "Status": 5, "ErrorCode": 17, "ErrorMessage": "settled"})]
    for raw in pages:
        clock.tick(30)
        store_page(ctx.uow_factory, parse_callback(raw), raw, clock())
    settle_leg(ctx, dispatcher.settles[0])  # the Paywall leg, waiting on those pages
    # A few more of the big job's legs, in one batch like a worker takes them.
    clock.tick()
    big = [leg for leg, _ in dispatcher.legs[-BIG_JOB_LEGS:]]
    process_legs(ctx, big[5:12])
    return ids
