"""6DOT50 through a real worker process, a real Redis and the sandbox over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from tests.support import jobs_answer, wait_for_job
from worker.producer import publish

pytestmark = pytest.mark.integration

# One worker process with threads: the token cache is shared, so the refresh test is exact.
STACK_ENV = {
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "1",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
    "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
    # How long a summary that does not add up is waited for.
    "CANCELFLOW_CALLBACK_TIMEOUT_SECONDS": "3",
}
# Beat runs the sweep, which reads a summary that does not add up again.
STACK_PROCESSES = ("worker", "beat")


def request_for(batch_id: str, **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": f"it-{uuid.uuid4()}",
            "legs": [{"provider": "sixdot50", "batch_id": batch_id}], **extra}


def operations(sandbox: SandboxControl, batch_id: str) -> list[str]:
    return [c["operation"] for c in sandbox.calls(provider="sixdot50", target=batch_id)]


def test_draft_batch_is_cancelled_and_reconciled(producer: Celery, ledger: Engine,
                                                 sandbox: SandboxControl) -> None:
    """Given a DRAFT batch of 185 x 100.00, the job ends reconciled with its counts and amounts."""
    batch = sandbox.seed_batch(count=185, amount_each="100.00")["id"]
    job_id = publish(producer, request_for(batch, expect={"count": 185, "amount": "18500.00"}))
    assert job_id is not None
    job = wait_for_job(ledger, job_id)
    assert job["state"] == "reconciled"
    evidence = job["legs"][0]["reconciliation"]
    assert evidence["expected"] == {"count": 185, "amount": "18500.00"}
    assert evidence["reported"]["cancelled_count"] == 185
    assert evidence["reported"]["cancelled_amount"] == "18500.00"
    assert sandbox.effects("sixdot50") == {f"sixdot50:cancel_batch:{batch}": 1}
    # The cancel's answer adds up: it is the evidence, no read of the batch follows.
    assert operations(sandbox, batch) == ["cancel_batch"]


def test_a_summary_that_never_adds_up_ends_the_job_mismatch(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """A DRAFT batch holding one payment still PENDING: the cancel leaves it out, the summary
    never adds up, and CALLBACK_TIMEOUT_SECONDS later the job ends mismatch with the figures."""
    payments = [{"amount": "100.00"}] * 184 + [{"amount": "100.00", "statusCode": "PENDING"}]
    batch = sandbox.seed_batch(payments=payments)["id"]
    job = wait_for_job(ledger, publish(producer, request_for(batch)) or "")
    leg = job["legs"][0]
    assert (job["state"], leg["state"]) == ("mismatch", "cancelled")
    assert leg["reconciliation"]["reported"]["cancelled_count"] == 184
    assert {"leg": leg["id"], "field": "cancelled_count", "expected": "185",
            "reported": "184"} in job["reconciliation"]["differences"]
    assert "did not account for every payment" in leg["detail"]
    reads = operations(sandbox, batch)
    assert reads[0] == "cancel_batch" and set(reads[1:]) == {"get_batch"}


def test_closed_batch_is_rejected_without_retries(producer: Celery, ledger: Engine,
                                                  sandbox: SandboxControl) -> None:
    """A CLOSED batch ends rejected/not_cancellable after one cancel and one read."""
    batch = sandbox.seed_batch(count=3, amount_each="10.00", statusCode="CLOSED")["id"]
    job = wait_for_job(ledger, publish(producer, request_for(batch)) or "")
    leg = job["legs"][0]
    assert (job["state"], leg["state"], leg["reason"]) == ("failed", "rejected", "not_cancellable")
    assert operations(sandbox, batch) == ["cancel_batch", "get_batch"]
    assert leg["attempts"] == 2


def test_revoked_token_is_refreshed(producer: Celery, ledger: Engine,
                                    sandbox: SandboxControl) -> None:
    """When the cached token stops working, the worker fetches a new one and carries on."""
    first = sandbox.seed_batch(count=1, amount_each="5.00")["id"]
    wait_for_job(ledger, publish(producer, request_for(first)) or "")
    sandbox._post("/sixdot50/revoke-tokens")
    second = sandbox.seed_batch(count=1, amount_each="5.00")["id"]
    job = wait_for_job(ledger, publish(producer, request_for(second)) or "")
    assert job["state"] == "reconciled"
    statuses = [c["status"] for c in sandbox.calls(provider="sixdot50", target=second)]
    assert 401 in statuses


def test_503_then_timeout_then_success(producer: Celery, ledger: Engine,
                                       sandbox: SandboxControl) -> None:
    """A 503 and a timeout after send are each resolved by reading; then the cancel succeeds."""
    batch = sandbox.seed_batch(count=2, amount_each="1.00")["id"]
    sandbox.add_fault(provider="sixdot50", operation="cancel_batch", target=batch,
                      action="status", status=503, times=1)
    sandbox.add_fault(provider="sixdot50", operation="cancel_batch", target=batch,
                      action="timeout", delay_ms=2500, after=1, times=1)
    job = wait_for_job(ledger, publish(producer, request_for(batch)) or "", timeout=45)
    assert job["state"] == "reconciled"
    calls = [(c["operation"], c["status"]) for c in sandbox.calls(provider="sixdot50",
                                                                  target=batch)]
    # A stale token from an earlier test may add a 401 and a repeat: not this test's subject.
    # The 503 may have hidden a cancel: read before the next one (item 4), as after a timeout.
    assert [op for op, status in calls if status != 401] == [
        "cancel_batch", "get_batch", "cancel_batch", "get_batch", "cancel_batch"], calls
    assert sandbox.effects("sixdot50")[f"sixdot50:cancel_batch:{batch}"] == 1


def test_same_key_three_times_cancels_once(producer: Celery, ledger: Engine,
                                           sandbox: SandboxControl) -> None:
    """The same idempotency key sent three times gives one job and one provider cancel."""
    batch = sandbox.seed_batch(count=2, amount_each="3.00")["id"]
    request = request_for(batch)
    ids = {publish(producer, request) for _ in range(3)}
    assert len(ids) == 1
    job = wait_for_job(ledger, ids.pop() or "")
    assert job["state"] == "reconciled"
    publish(producer, request)
    wait_for_job(ledger, job["id"])
    assert operations(sandbox, batch).count("cancel_batch") == 1


def test_malformed_messages_become_invalid_jobs(producer: Celery, ledger: Engine,
                                                sandbox: SandboxControl) -> None:
    """Bad messages are kept as invalid jobs, and the worker goes on with the next good one."""
    from worker.domain.request import job_id_for_key
    from worker.producer import SUBMIT_TASK

    producer.send_task(SUBMIT_TASK, kwargs={}, queue="cancellations")
    producer.send_task(SUBMIT_TASK, args=[1, 2], queue="cancellations")
    producer.send_task(SUBMIT_TASK, kwargs={"request": "cancel it"}, queue="cancellations")
    bad_key = f"bad-{uuid.uuid4()}"
    producer.send_task(SUBMIT_TASK, queue="cancellations", kwargs={
        "request": {"idempotency_key": bad_key, "legs": [{"provider": "acme"}]}})
    batch = sandbox.seed_batch(count=1, amount_each="1.00")["id"]
    good = wait_for_job(ledger, publish(producer, request_for(batch)) or "")
    assert good["state"] == "reconciled"
    invalid = wait_for_job(ledger, str(job_id_for_key(bad_key)))
    assert invalid["state"] == "invalid"
    assert any("legs" in error["field"] for error in invalid["errors"])
    from worker.domain.states import JobState
    from worker.ledger.views import LedgerReads
    from worker.services.views import list_jobs

    listed = jobs_answer(list_jobs(LedgerReads(ledger), state=JobState.INVALID, limit=50,
                                   cursor=None))
    assert len(listed) == 4
    assert all(job["state"] == "invalid" and job["errors"] for job in listed)


def test_invalid_job_id_is_the_digest_of_the_body_as_received(producer: Celery,
                                                              ledger: Engine) -> None:
    """A keyless invalid message is filed under uuid5 of the SHA-256 of its raw body."""
    import hashlib

    from worker.domain.request import invalid_job_id

    body = b'[[], {"request": {"legs": "none"}, "nonce": "%s"}, {}]' % uuid.uuid4().hex.encode()
    task_id = str(uuid.uuid4())
    with producer.connection_for_write() as conn:
        conn.Producer().publish(
            body,
            routing_key="cancellations",
            exchange="cancellations",
            content_type="application/json",
            content_encoding="utf-8",
            headers={"lang": "py", "task": "cancellations.submit", "id": task_id,
                     "root_id": task_id, "parent_id": None, "group": None, "retries": 0,
                     "eta": None, "expires": None},
        )
    job = wait_for_job(ledger, str(invalid_job_id(hashlib.sha256(body).hexdigest())))
    assert job["state"] == "invalid"
    assert {e["field"] for e in job["errors"]} == {"request"}
