"""Lost-callback recovery in stages, on the real ledger with Paywall over MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from tests.conftest import FakeDispatcher
from worker.domain.states import Provider
from worker.ledger.views import LedgerReads
from worker.providers.paywall import Paywall
from worker.services.context import Context, RetryPolicy
from worker.services.drivers.paywall import PaywallDriver
from worker.services.legs import process_legs
from worker.services.recovery import recover_leg
from worker.services.submit import submit
from worker.services.views import get_job


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def paywall_answering(rows: int, calls: list[str]) -> Paywall:
    """Cancel accepted for 3 payments; the query shows `rows` of their cancel results."""

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        calls.append(name)
        body: object = {"Result": True, "BulkPaymentId": 9, "TotalPaymentCount": 3}
        if name == "query":
            body = {"TotalCount": rows, "TotalPages": 1, "PageNumber": 1, "Payments": [
                {"MerchantUniqueCode": f"p{i}", "PaymentId": i, "Amount": 5, "Status": 4,
                 "Scope": "cancel"} for i in range(rows)]}
        return httpx.Response(200, json={"ErrorCode": 0, "Result": True, "Body": body})

    return Paywall(httpx.Client(transport=httpx.MockTransport(handler)),
                   public_url="https://pw/p", private_url="https://pw/s",
                   public_headers=(SecretStr("k"), SecretStr("c")), private_headers=None)


def start(engine: Engine, rows: int) -> tuple[Context, Clock, list[str], str, str]:
    clock = Clock()
    calls: list[str] = []
    driver = PaywallDriver(paywall_answering(rows, calls), ZoneInfo("Europe/Istanbul"), clock)
    dispatcher = FakeDispatcher()
    ctx = Context(engine, {Provider.PAYWALL: driver}, dispatcher, RetryPolicy(1, 1, 3), 60,
                  callback_timeout_seconds=900, clock=clock)
    job_id = submit(ctx, (), {"request": {"idempotency_key": "rec", "legs": [
        {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "bulk-1",
         "payment_date": "2026-11-21"}]}}).job_id
    leg_id = dispatcher.legs[0][0]
    process_legs(ctx, [leg_id])
    return ctx, clock, calls, job_id, leg_id


def test_recovery_asks_again_then_reads_the_query(engine: Engine) -> None:
    """After the timeout: a re-send request; after as long again: the query settles the leg."""
    ctx, clock, calls, job_id, leg_id = start(engine, rows=3)
    assert recover_leg(ctx, leg_id) is None  # not due yet
    clock.now += timedelta(seconds=901)
    assert recover_leg(ctx, leg_id) == "resend_requested"
    assert recover_leg(ctx, leg_id) is None  # a second sweep at the same moment does nothing
    clock.now += timedelta(seconds=901)
    assert recover_leg(ctx, leg_id) == "recovered_from_query"
    assert calls == ["cancel", "callback", "query"]
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None and job["state"] == "reconciled"
    assert job["legs"][0]["reconciliation"]["source"] == "paywall_query"
    assert job["legs"][0]["attempts"] == 3


def test_recovery_gives_up_with_callback_timeout(engine: Engine) -> None:
    """When the query shows only part of the results, the leg ends failed/callback_timeout."""
    ctx, clock, _calls, job_id, leg_id = start(engine, rows=2)
    for expected in ("resend_requested", "query_incomplete", "failed"):
        clock.now += timedelta(seconds=901)
        assert recover_leg(ctx, leg_id) == expected
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None and job["state"] == "failed"
    assert (job["legs"][0]["state"], job["legs"][0]["reason"]) == ("failed", "callback_timeout")
