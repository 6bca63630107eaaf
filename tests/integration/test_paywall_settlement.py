"""Paywall callback pages into the real ledger: storing, settling, order and duplicates."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.conftest import FakeDispatcher
from worker.domain.outcomes import AwaitingCallbacks, Outcome, ResolveOutcome
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Provider
from worker.ledger import UnitOfWork, create_ledger_engine, upgrade_ledger
from worker.ledger.views import LedgerReads
from worker.providers.calls import CallObserver
from worker.providers.paywall_callbacks import expected_hash, parse_callback
from worker.services.callbacks import settle_for_page, store_page
from worker.services.context import Context, RetryPolicy
from worker.services.legs import process_leg
from worker.services.submit import submit
from worker.services.views import get_job

KEY = b"k"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PAYMENTS = 2500


class AcceptingPaywall:
    """A driver whose cancel is accepted as operation 9 covering PAYMENTS payments."""

    provider = Provider.PAYWALL

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        return AwaitingCallbacks("9", PAYMENTS)

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        raise AssertionError("not expected")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return None


def pages(failed: int = 0, scope: str | None = "cancel") -> list[bytes]:
    """2,500 payments of 10.00 in pages of 1,000; the first `failed` payments failed."""
    bodies = []
    for number, start in enumerate(range(0, PAYMENTS, 1000), start=1):
        payments = [{"MerchantUniqueCode": f"p{i}", "PaymentId": i, "Amount": 10.0,
                     "Status": 5 if i < failed else 4, "Scope": scope}
                    for i in range(start, min(start + 1000, PAYMENTS))]
        bodies.append(json.dumps({
            "BulkPaymentId": 9, "MerchantUniqueCode": "bulk-1",
            "Hash": expected_hash(KEY, "9", "bulk-1"), "PageNumber": number, "TotalPages": 3,
            "HasMorePages": number < 3, "Payments": payments}).encode())
    return bodies


def context(engine: Engine) -> tuple[Context, FakeDispatcher]:
    dispatcher = FakeDispatcher()
    ctx = Context(engine, {Provider.PAYWALL: AcceptingPaywall()}, dispatcher,
                  RetryPolicy(1, 1, 3), 60, clock=lambda: NOW)
    return ctx, dispatcher


def start_job(ctx: Context, dispatcher: FakeDispatcher, **extra: Any) -> str:
    request = {"idempotency_key": "pw-1", "legs": [
        {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "bulk-1",
         "payment_date": "2026-11-21"}], **extra}
    job_id = submit(ctx, (), {"request": request}).job_id
    process_leg(ctx, dispatcher.legs[0][0])
    return job_id


def deliver(ctx: Context, raw: bytes) -> bool:
    page = parse_callback(raw)
    stored = store_page(ctx.engine, page, raw, NOW)
    settle_for_page(ctx, page.bulk_payment_id, page.merchant_unique_code)
    return stored.new


def test_pages_out_of_order_with_a_duplicate_reconcile(engine: Engine) -> None:
    """2,500 payments in 3 pages, delivered 3, 1, 1, 2: the job reconciles once, exactly."""
    ctx, dispatcher = context(engine)
    job_id = start_job(ctx, dispatcher, expect={"count": 2500, "amount": "25000.00"})
    p1, p2, p3 = pages()
    assert [deliver(ctx, raw) for raw in (p3, p1, p1)] == [True, True, False]
    assert get_job(LedgerReads(engine), job_id)["state"] == "awaiting_callbacks"  # type: ignore[index]
    deliver(ctx, p2)
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None and job["state"] == "reconciled"
    leg = job["legs"][0]
    assert leg["provider_reference"] == "9"
    assert leg["reconciliation"]["reported"]["cancelled_count"] == 2500
    assert leg["reconciliation"]["reported"]["cancelled_amount"] == "25000.00"
    assert leg["reconciliation"]["source"] == "paywall_callbacks"


def test_pages_without_scope_settle_the_leg_that_knows_their_operation(engine: Engine) -> None:
    """Pages without Scope settle the leg that knows their operation's BulkPaymentId."""
    ctx, dispatcher = context(engine)
    job_id = start_job(ctx, dispatcher, expect={"count": 2500, "amount": "25000.00"})
    for raw in pages(scope=None):
        deliver(ctx, raw)
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None and job["state"] == "reconciled"
    assert job["legs"][0]["reconciliation"]["reported"]["cancelled_count"] == 2500


def test_failed_payments_end_the_job_in_mismatch(engine: Engine) -> None:
    """Payments Paywall failed to cancel show as failed_count and a cancelled shortfall."""
    ctx, dispatcher = context(engine)
    job_id = start_job(ctx, dispatcher)
    for raw in pages(failed=2):
        deliver(ctx, raw)
    job = get_job(LedgerReads(engine), job_id)
    assert job is not None and job["state"] == "mismatch"
    fields = {d["field"]: d["reported"] for d in job["reconciliation"]["differences"]}
    assert fields == {"cancelled_count": "2498", "cancelled_amount": "24980.00",
                      "failed_count": "2"}


def test_pages_before_the_leg_knows_its_operation_are_kept(engine: Engine) -> None:
    """Pages that arrive before the cancel's answer is recorded settle the leg afterwards."""
    ctx, dispatcher = context(engine)
    submit(ctx, (), {"request": {"idempotency_key": "pw-early", "legs": [
        {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "bulk-1",
         "payment_date": "2026-11-21"}]}})
    for raw in pages():
        deliver(ctx, raw)
    process_leg(ctx, dispatcher.legs[0][0])
    assert dispatcher.settles == [dispatcher.legs[0][0]]
    from worker.services.callbacks import settle_leg

    assert settle_leg(ctx, dispatcher.legs[0][0]) is not None


@pytest.fixture(scope="module")
def template_ledger() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp())
    engine = create_ledger_engine(f"sqlite:///{folder / 'template.db'}")
    upgrade_ledger(engine)
    engine.dispose()
    yield folder / "template.db"
    shutil.rmtree(folder)


def final_ledger(template: Path, order: list[int]) -> tuple[Any, ...]:
    """Deliver pages in `order` to a fresh ledger; what the ledger ends up holding."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "l.db"
        shutil.copy(template, db)
        engine = create_ledger_engine(f"sqlite:///{db}")
        try:
            ctx, dispatcher = context(engine)
            job_id = start_job(ctx, dispatcher)
            bodies = pages(failed=3)
            for index in order:
                deliver(ctx, bodies[index])
            job = get_job(LedgerReads(engine), job_id)
            assert job is not None
            with UnitOfWork(engine) as ledger:
                stored = ledger.count_pages()
            return (job["state"], job["reconciliation"], job["legs"][0]["state"],
                    job["legs"][0]["reconciliation"], stored)
        finally:
            engine.dispose()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2), min_size=3, max_size=7).filter(
    lambda order: set(order) == {0, 1, 2}))
def test_any_order_and_duplication_gives_the_same_ledger(template_ledger: Path,
                                                         order: list[int]) -> None:
    """Property: every delivery order, with any duplicates, ends in the same ledger."""
    assert final_ledger(template_ledger, order) == final_ledger(template_ledger, [0, 1, 2])
