"""Paywall legs round by round on the ledger in memory, Paywall over MockTransport: "not at this
time" (269) retried while the day is on, and an answer that may have taken effect read before
any second cancel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from tests.fakes import FakeDispatcher, FakeUnitsOfWork
from worker.domain.states import LegState, Provider
from worker.providers.paywall.adapter import Paywall
from worker.providers.paywall.driver import PaywallDriver
from worker.services.context import Context, RetryPolicy
from worker.services.legs import process_leg, process_legs
from worker.services.submit import submit

QUEUED = {"ErrorCode": 0, "Result": True,
          "Body": {"Result": True, "BulkPaymentId": 9, "TotalPaymentCount": 3}}
NOT_NOW = {"ErrorCode": 269, "Result": False, "ErrorMessage": "ThisOperationCannotDoInThisTime"}


def rows(scope: str) -> dict[str, Any]:
    return {"ErrorCode": 0, "Result": True, "Body": {"Payments": [
        {"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 5, "Status": 4, "Scope": "sale"},
        {"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 5, "Status": 4, "Scope": scope},
    ]}}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # noon in Istanbul

    def __call__(self) -> datetime:
        return self.now


class Leg:
    """One Paywall bulk leg whose provider answers come from a script, one per call."""

    def __init__(self, uows: FakeUnitsOfWork, answers: list[tuple[int, Any]]) -> None:
        self.calls: list[str] = []
        script: Iterator[tuple[int, Any]] = iter(answers)

        def handler(request: httpx.Request) -> httpx.Response:
            self.calls.append(request.url.path.rsplit("/", 1)[-1])
            status, body = next(script)
            return httpx.Response(status, json=body)

        api = Paywall(httpx.Client(transport=httpx.MockTransport(handler)),
                      public_url="https://pw/p", private_url="https://pw/s",
                      public_headers=(SecretStr("k"), SecretStr("c")), private_headers=None)
        self.uows = uows
        self.clock = Clock()
        driver = PaywallDriver(api, ZoneInfo("Europe/Istanbul"), self.clock)
        dispatcher = FakeDispatcher()
        self.ctx = Context(uows, {Provider.PAYWALL: driver}, dispatcher,
                           RetryPolicy(1, 1, 4), 60, callback_timeout_seconds=900,
                           clock=self.clock)
        submit(self.ctx, (), {"request": {"idempotency_key": "rounds", "legs": [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "bulk-1",
             "payment_date": "2026-11-21"}]}})
        self.id = dispatcher.legs[0][0]
        process_legs(self.ctx, [self.id])

    def next_round(self) -> None:
        self.clock.now += timedelta(seconds=2)  # past any backoff (at most 1 s here)
        process_leg(self.ctx, self.id)

    def record(self) -> Any:
        return self.uows.ledger.legs[self.id]


def test_269_while_the_day_is_on_is_retried_until_accepted(uows: FakeUnitsOfWork) -> None:
    """Two 269s at noon in Istanbul, then accepted: the leg waits for callbacks, no refund."""
    leg = Leg(uows, [(200, NOT_NOW), (200, NOT_NOW), (200, QUEUED)])
    assert leg.record().state is LegState.RETRYING
    leg.next_round()
    leg.next_round()
    record = leg.record()
    assert (record.state, record.provider_reference, record.retries) == (
        LegState.AWAITING_CALLBACKS, "9", 2)
    assert leg.calls == ["cancel", "cancel", "cancel"]


def test_269_past_the_attempts_budget_ends_failed_with_the_reason(uows: FakeUnitsOfWork) -> None:
    """A 269 that never lifts ends retries_exhausted, saying what Paywall answered."""
    leg = Leg(uows, [(200, NOT_NOW)] * 4)
    for _ in range(3):
        leg.next_round()
    record = leg.record()
    assert (record.state, record.reason) == (LegState.FAILED, "retries_exhausted")
    assert "269" in record.detail and leg.calls == ["cancel"] * 4


@pytest.mark.parametrize("ambiguous", [
    (503, None), (200, {"ErrorCode": 5, "Result": False, "ErrorMessage": "Exception"}),
    (200, {"ErrorCode": 500, "Result": False}), (200, {"ErrorCode": 0, "Result": True,
                                                       "Body": {"Result": False}}),
])
def test_an_answer_that_may_have_taken_effect_is_read_before_cancelling_again(
        uows: FakeUnitsOfWork, ambiguous: tuple[int, Any]) -> None:
    """After a 5xx, exception code or Body.Result false, cancel rows read mean no second cancel."""
    leg = Leg(uows, [ambiguous, (200, rows("cancel"))])
    assert (leg.record().state, leg.record().needs_resolve) == (LegState.UNKNOWN, True)
    leg.next_round()
    assert leg.record().state is LegState.AWAITING_CALLBACKS
    assert leg.calls == ["cancel", "query"]


def test_a_read_showing_no_cancel_lets_the_cancel_go_again(uows: FakeUnitsOfWork) -> None:
    """After an ambiguous answer, a query with only the sale rows means nothing was taken."""
    leg = Leg(uows, [(502, None), (200, rows("sale")), (200, QUEUED)])
    leg.next_round()
    assert leg.record().state is LegState.AWAITING_CALLBACKS
    assert leg.calls == ["cancel", "query", "cancel"]
