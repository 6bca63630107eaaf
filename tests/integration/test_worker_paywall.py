"""Paywall end to end: worker, receiver (gunicorn), beat, and the sandbox's signed callbacks."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from tests.support import midday_zone, today_in, wait_for_job
from worker.ledger.uow import SqlUnitOfWork
from worker.producer import publish

pytestmark = pytest.mark.integration

ZONE = midday_zone()
STACK_PROCESSES = ("receiver", "worker", "beat")
STACK_ENV = {
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "2",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
    "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
    "CANCELFLOW_CALLBACK_TIMEOUT_SECONDS": "3",
    "CANCELFLOW_PAYWALL_TIMEZONE": ZONE,
}


@pytest.fixture(autouse=True)
def paywall_delivers_to_the_receiver(sandbox: SandboxControl, stack: Stack) -> None:
    """The sandbox's Paywall computes "today" in the test's zone and calls our receiver."""
    sandbox.settings(paywall={"timezone": ZONE, "query_totals": None,
                              "callback_url": f"{stack.receiver_url}/callbacks/paywall"})


def bulk(sandbox: SandboxControl, *, day: str | None = None, **extra: Any) -> str:
    code = f"bulk-{uuid.uuid4().hex[:10]}"
    sandbox.seed_bulk(code=code, date=day or today_in(ZONE), amount_each="10.00", **extra)
    return code


def cancel(producer: Celery, code: str, day: str | None = None, scope: str = "bulk",
           **extra: Any) -> str:
    job_id = publish(producer, {"idempotency_key": f"pw-{uuid.uuid4()}", "legs": [
        {"provider": "paywall", "scope": scope, "merchant_unique_code": code,
         "payment_date": day or today_in(ZONE)}], **extra})
    assert job_id is not None
    return job_id


def operations(sandbox: SandboxControl, code: str) -> list[str]:
    return [c["operation"] for c in sandbox.calls(provider="paywall", target=code)]


@pytest.mark.also_on_postgresql
def test_2500_payments_pages_out_of_order_with_a_duplicate(producer: Celery, ledger: Engine,
                                                           sandbox: SandboxControl) -> None:
    """2,500 payments; pages sent 3, 2, 1 with page 2 twice: reconciled, exact figures."""
    code = bulk(sandbox, count=2500, order="reverse", duplicate_pages=[2])
    job = wait_for_job(ledger, cancel(producer, code,
                                      expect={"count": 2500, "amount": "25000.00"}), timeout=60)
    assert job["state"] == "reconciled", job
    evidence = job["legs"][0]["reconciliation"]
    assert evidence["source"] == "paywall_callbacks"
    assert evidence["reported"]["cancelled_count"] == 2500
    assert evidence["reported"]["cancelled_amount"] == "25000.00"
    assert operations(sandbox, code) == ["cancel_bulk"]
    cancels = {k: v for k, v in sandbox.effects("paywall").items() if k.startswith(
        f"paywall:cancel_payment:{code}")}
    assert len(cancels) == 2500 and set(cancels.values()) == {1}


def test_failed_payments_in_a_bulk_end_in_mismatch(producer: Celery, ledger: Engine,
                                                   sandbox: SandboxControl) -> None:
    """Payments Paywall could not cancel make the job a mismatch, with failed_count."""
    code = bulk(sandbox, count=20, fail_count=2)
    job = wait_for_job(ledger, cancel(producer, code), timeout=60)
    assert job["state"] == "mismatch"
    diffs = {d["field"]: d["reported"] for d in job["reconciliation"]["differences"]}
    assert diffs["failed_count"] == "2" and diffs["cancelled_count"] == "18"


def test_past_payment_day_is_rejected_without_any_call(producer: Celery, ledger: Engine,
                                                       sandbox: SandboxControl) -> None:
    """on_cutoff=reject: a payment day in the past ends rejected/cutoff_passed, zero calls."""
    yesterday = (date.fromisoformat(today_in(ZONE)) - timedelta(days=1)).isoformat()
    code = bulk(sandbox, count=3, day=yesterday)
    job = wait_for_job(ledger, cancel(producer, code, day=yesterday))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["reason"]) == ("failed", "rejected", "cutoff_passed")
    assert operations(sandbox, code) == [] and leg["attempts"] == 0


@pytest.mark.also_on_postgresql
def test_past_payment_day_is_refunded_when_asked(producer: Celery, ledger: Engine,
                                                 sandbox: SandboxControl) -> None:
    """on_cutoff=refund: the refund endpoint is called, never cancel, and the leg is refunded."""
    yesterday = (date.fromisoformat(today_in(ZONE)) - timedelta(days=1)).isoformat()
    code = bulk(sandbox, count=4, day=yesterday)
    job = wait_for_job(ledger, cancel(producer, code, day=yesterday, on_cutoff="refund",
                                      expect={"count": 4, "amount": "40.00"}), timeout=60)
    leg = job["legs"][0]
    assert (job["state"], leg["state"]) == ("reconciled", "refunded")
    assert operations(sandbox, code) == ["refund_bulk"]
    assert leg["reconciliation"]["reported"]["refunded_count"] == 4


def test_a_single_payment_is_cancelled_through_the_private_api(
        producer: Celery, ledger: Engine, sandbox: SandboxControl) -> None:
    """scope=payment uses the private cancel and settles on its one-page callback."""
    code = f"pay-{uuid.uuid4().hex[:10]}"
    sandbox._post("/paywall/payments", {"code": code, "date": today_in(ZONE), "amount": "99.90"})
    job = wait_for_job(ledger, cancel(producer, code, scope="payment"), timeout=60)
    assert job["state"] == "reconciled"
    assert operations(sandbox, code) == ["cancel_payment"]
    assert job["legs"][0]["reconciliation"]["reported"]["cancelled_amount"] == "99.90"


@pytest.mark.also_on_postgresql
def test_a_dropped_page_is_recovered_by_asking_again(producer: Celery, ledger: Engine,
                                                     sandbox: SandboxControl) -> None:
    """Page 2 never arrives: the sweep asks Paywall to send the callback again, and it settles."""
    code = bulk(sandbox, count=2500, drop_pages=[2])
    job = wait_for_job(ledger, cancel(producer, code), timeout=90)
    assert job["state"] == "reconciled"
    assert operations(sandbox, code) == ["cancel_bulk", "send_callback"]


@pytest.mark.parametrize(("count", "totals", "pages"), [
    (1200, None, 3),  # 2,400 rows: 1,000, 1,000, 400 (short: the end); no totals at all
    (1000, "TotalPaymentCount", 3),  # 2,000 rows: 1,000, 1,000, then an empty page
])
def test_callbacks_that_never_verify_are_recovered_from_the_query(
        producer: Celery, ledger: Engine, sandbox: SandboxControl, count: int,
        totals: str | None, pages: int) -> None:
    """Pages never verify, even re-sent: the query, paged to a short page, gives the figures."""
    sandbox.settings(paywall={"query_totals": totals})
    code = bulk(sandbox, count=count, bad_hash=True)
    job = wait_for_job(ledger, cancel(producer, code), timeout=90)
    assert job["state"] == "reconciled"
    leg = job["legs"][0]
    assert leg["reconciliation"]["source"] == "paywall_query"
    assert leg["reconciliation"]["reported"]["cancelled_count"] == count
    assert operations(sandbox, code) == ["cancel_bulk", "send_callback"] + ["query_bulk"] * pages
    with SqlUnitOfWork(ledger) as uow:
        # Refused, never stored.
        assert uow.callback_pages.totals(bulk_payment_id=None, code=code) == []
