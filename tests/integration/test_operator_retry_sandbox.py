"""An operator's retry through real processes: the receiver, a worker, Redis and the sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from tests.support import wait_for_job
from worker.producer import publish

pytestmark = pytest.mark.integration

MERCHANT = "T123456789"
STACK_PROCESSES = ("receiver", "worker")
STACK_ENV = {
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "1",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "0.5",
    "CANCELFLOW_RETRY_MAX_ATTEMPTS": "2",
}


def _operations(sandbox: SandboxControl, reference: str) -> list[str]:
    return [c["operation"] for c in sandbox.calls(provider="bambora",
                                                  target=f"{MERCHANT}/{reference}")
            if c["status"] != 401]


def test_retry_reads_the_payment_first_and_never_cancels_twice(
        stack: Stack, producer: Celery, ledger: Engine, sandbox: SandboxControl) -> None:
    """Given a leg failed after a cancel that took effect behind a 503 and unreadable payments,
    when an operator retries it, the payment is read first (Canceled) and not cancelled again."""
    reference = f"ref-{uuid.uuid4()}"
    sandbox.seed_payment(merchant=MERCHANT, reference=reference, state="Authorized",
                         amount=12550)
    target = f"{MERCHANT}/{reference}"
    sandbox.add_fault(provider="bambora", operation="cancel_payment", target=target,
                      action="status", status=503, effect=True, times=1)
    sandbox.add_fault(provider="bambora", operation="get_payment", target=target,
                      action="status", status=503)
    job_id = publish(producer, {"idempotency_key": f"ops-{uuid.uuid4()}", "legs": [
        {"provider": "bambora", "merchant": MERCHANT, "payment_reference": reference}]})
    assert job_id is not None
    failed = wait_for_job(ledger, job_id, timeout=60)
    [leg] = failed["legs"]
    assert (failed["state"], leg["state"]) == ("failed", "failed")
    before = _operations(sandbox, reference)
    assert before[0] == "cancel_payment" and set(before[1:]) == {"get_payment"}
    sandbox.clear_faults()

    answer = httpx.post(f"{stack.receiver_url}/api/v1/legs/{leg['id']}/retry",
                        json={"note": "Bambora is answering again"}, timeout=10,
                        headers={"Authorization": f"Bearer {stack.env['CANCELFLOW_API_TOKEN']}"})
    assert answer.status_code == 202, answer.text
    done: dict[str, Any] = wait_for_job(ledger, job_id, timeout=60)

    [leg] = done["legs"]
    assert (done["state"], leg["state"]) == ("reconciled", "cancelled")
    assert _operations(sandbox, reference)[len(before):] == ["get_payment"]
    assert sandbox.effects("bambora")[f"bambora:cancel_payment:{target}"] == 1
    assert [e["type"] for e in done["events"]] == ["leg_retried"]
