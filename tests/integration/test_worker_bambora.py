"""Bambora legs through a real worker process, a real Redis and the sandbox over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from tests.support import wait_for_job
from worker.ledger.uow import SqlUnitOfWork
from worker.producer import publish

pytestmark = pytest.mark.integration

MERCHANT = "T123456789"
STACK_ENV = {
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "1",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
    "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
}


def payment(sandbox: SandboxControl, state: str = "Authorized",
            reference: str | None = None) -> str:
    reference = reference or f"ref-{uuid.uuid4()}"
    sandbox.seed_payment(merchant=MERCHANT, reference=reference, state=state, amount=12550)
    return reference


def cancel_job(producer: Celery, *references: str) -> str:
    job_id = publish(producer, {"idempotency_key": f"bb-{uuid.uuid4()}", "legs": [
        {"provider": "bambora", "merchant": MERCHANT, "payment_reference": ref}
        for ref in references]})
    assert job_id is not None
    return job_id


def operations(sandbox: SandboxControl, reference: str) -> list[tuple[str, Any]]:
    return [(c["operation"], c["status"]) for c in sandbox.calls(
        provider="bambora", target=f"{MERCHANT}/{reference}")]


@pytest.mark.also_on_postgresql
def test_503_503_then_success_each_read_before_the_next_cancel(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """Two 503s may each hide a cancel: the payment is read (Authorized) before the next try;
    the third cancel succeeds; five attempts, one effect."""
    ref = payment(sandbox)
    sandbox.add_fault(provider="bambora", operation="cancel_payment",
                      target=f"{MERCHANT}/{ref}", action="status", status=503, times=2)
    job = wait_for_job(ledger, cancel_job(producer, ref))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["attempts"]) == ("reconciled", "cancelled", 5)
    assert [op for op, _ in operations(sandbox, ref)] == [
        "cancel_payment", "get_payment", "cancel_payment", "get_payment", "cancel_payment"]
    evidence = leg["reconciliation"]
    assert (evidence["source"], evidence["currency"]) == ("bambora_payment", "SEK")
    assert evidence["reported"]["cancelled_amount"] == "125.50"


def test_a_503_that_took_effect_is_confirmed_by_reading(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """A cancel that took effect behind a 503 is found Canceled by the read: never sent again."""
    ref = payment(sandbox)
    sandbox.add_fault(provider="bambora", operation="cancel_payment",
                      target=f"{MERCHANT}/{ref}", action="status", status=503, effect=True)
    job = wait_for_job(ledger, cancel_job(producer, ref))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["already_cancelled"]) == (
        "reconciled", "cancelled", False)
    assert [op for op, _ in operations(sandbox, ref)] == ["cancel_payment", "get_payment"]
    assert sandbox.effects("bambora")[f"bambora:cancel_payment:{MERCHANT}/{ref}"] == 1


def test_a_portal_cancel_is_tried_again_then_handed_to_a_person(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """Cancelled in the merchant portal, the payment still reads Authorized and every cancel is
    refused: retried within the attempts budget, then failed/retries_exhausted with a detail
    that sends a person to the portal; never rejected on the first refusal."""
    ref = payment(sandbox)
    sandbox._post(f"/bambora/payments/{MERCHANT}/state", {"reference": ref, "state": "Canceled"})
    job = wait_for_job(ledger, cancel_job(producer, ref), timeout=60)
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["reason"]) == ("failed", "failed",
                                                           "retries_exhausted")
    assert "merchant portal" in leg["detail"]
    ops = [op for op, status in operations(sandbox, ref) if status != 401]
    assert ops == ["cancel_payment", "get_payment"] * 8  # RETRY_MAX_ATTEMPTS, the default
    assert f"bambora:cancel_payment:{MERCHANT}/{ref}" not in sandbox.effects("bambora")


@pytest.mark.also_on_postgresql
def test_409_is_read_then_retried(producer: Celery, ledger: Engine,
                                  sandbox: SandboxControl) -> None:
    """payment_operation_blocked: read the payment, then retry the cancel, which succeeds."""
    ref = payment(sandbox)
    sandbox.add_fault(provider="bambora", operation="cancel_payment",
                      target=f"{MERCHANT}/{ref}", action="status", status=409, times=1)
    job = wait_for_job(ledger, cancel_job(producer, ref))
    assert job["legs"][0]["state"] == "cancelled"
    assert [op for op, _ in operations(sandbox, ref)] == [
        "cancel_payment", "get_payment", "cancel_payment"]


def test_already_canceled_is_cancelled_and_says_so(producer: Celery, ledger: Engine,
                                                   sandbox: SandboxControl) -> None:
    """A payment Canceled before we asked ends cancelled with already_cancelled true."""
    ref = payment(sandbox, state="Canceled")
    job = wait_for_job(ledger, cancel_job(producer, ref))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["already_cancelled"]) == (
        "reconciled", "cancelled", True)


def test_captured_is_rejected_as_needing_a_refund(producer: Celery, ledger: Engine,
                                                  sandbox: SandboxControl) -> None:
    """A Captured payment is rejected/not_cancellable, and the detail says to refund it."""
    ref = payment(sandbox, state="Captured")
    job = wait_for_job(ledger, cancel_job(producer, ref))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["reason"]) == ("failed", "rejected",
                                                           "not_cancellable")
    assert "refund" in leg["detail"]
    assert [op for op, _ in operations(sandbox, ref)] == ["cancel_payment", "get_payment"]


def test_a_2000_character_reference_round_trips(producer: Celery, ledger: Engine,
                                                sandbox: SandboxControl) -> None:
    """A 2,000-character reference full of reserved characters is cancelled as itself."""
    ref = ("a/b?c#d%e f&g=h+ü€" * 120)[:2000]
    payment(sandbox, reference=ref)
    job = wait_for_job(ledger, cancel_job(producer, ref))
    assert job["legs"][0]["state"] == "cancelled"
    assert sandbox.effects("bambora")[f"bambora:cancel_payment:{MERCHANT}/{ref}"] == 1


@pytest.mark.also_on_postgresql
def test_timeout_after_send_is_resolved_by_a_read(producer: Celery, ledger: Engine,
                                                  sandbox: SandboxControl) -> None:
    """A cancel that took effect but whose answer was lost is confirmed by reading, not redone."""
    ref = payment(sandbox)
    sandbox.add_fault(provider="bambora", operation="cancel_payment",
                      target=f"{MERCHANT}/{ref}", action="timeout", delay_ms=2500, effect=True)
    job = wait_for_job(ledger, cancel_job(producer, ref), timeout=45)
    leg = job["legs"][0]
    assert (leg["state"], leg["already_cancelled"]) == ("cancelled", False)
    assert [op for op, _ in operations(sandbox, ref)] == ["cancel_payment", "get_payment"]
    assert sandbox.effects("bambora")[f"bambora:cancel_payment:{MERCHANT}/{ref}"] == 1
    with SqlUnitOfWork(ledger) as uow:
        outcomes = [a.outcome for a in uow.attempts.of_leg(leg["id"])]
    assert outcomes == ["TransportError", "ok"]
