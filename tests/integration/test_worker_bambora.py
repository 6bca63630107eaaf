"""Bambora legs through a real worker process, a real Redis and the sandbox over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine

from tests.support import wait_for_job
from worker.devstack.sandbox_control import SandboxControl
from worker.ledger import UnitOfWork
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


def test_503_503_then_success_after_three_attempts(producer: Celery, ledger: Engine,
                                                   sandbox: SandboxControl) -> None:
    """Two 503s are retried with backoff; the third cancel succeeds; three attempts."""
    ref = payment(sandbox)
    sandbox.add_fault(provider="bambora", operation="cancel_payment",
                      target=f"{MERCHANT}/{ref}", action="status", status=503, times=2)
    job = wait_for_job(ledger, cancel_job(producer, ref))
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["attempts"]) == ("reconciled", "cancelled", 3)
    evidence = leg["reconciliation"]
    assert (evidence["source"], evidence["currency"]) == ("bambora_payment", "SEK")
    assert evidence["reported"]["cancelled_amount"] == "125.50"


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
    with UnitOfWork(ledger) as uow:
        outcomes = [a.outcome for a in uow.attempts_of(leg["id"])]
    assert outcomes == ["TransportError", "ok"]
