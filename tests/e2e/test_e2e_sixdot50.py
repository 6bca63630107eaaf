"""The whole stack as processes: producer message in, HTTP API out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import fresh_postgres_url
from worker.celery_app import create_celery
from worker.producer import publish
from worker.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_url: str) -> Iterator[Stack]:
    """The whole stack, once on each ledger."""
    database_url = None
    if request.param == "postgresql":
        database_url = fresh_postgres_url(request.getfixturevalue("postgres"))
    stack = Stack.prepare(tmp_path_factory.mktemp("e2e"), redis_url=redis_url,
                          database_url=database_url,
                          extra_env={"CANCELFLOW_SWEEP_INTERVAL_SECONDS": "2"})
    try:
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker(concurrency=2, pool="prefork")  # the other pool, exercised too
        stack.start_beat()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    token = stack.env["CANCELFLOW_API_TOKEN"]
    with httpx.Client(base_url=stack.receiver_url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def test_producer_message_to_reconciled_job_over_http(stack: Stack, api: httpx.Client) -> None:
    """A producer publishes; the API shows the job reconciled with the batch's figures."""
    sandbox = SandboxControl(stack.sandbox_url)
    batch = sandbox.seed_batch(count=12, amount_each="250.00")["id"]
    settings = Settings(redis_url=stack.env["CANCELFLOW_REDIS_URL"])
    producer = create_celery(settings)
    request = {"idempotency_key": f"e2e-{uuid.uuid4()}", "reason": "customer request",
               "legs": [{"provider": "sixdot50", "batch_id": batch}],
               "expect": {"count": 12, "amount": "3000.00"}}
    job_id = publish(producer, request)
    producer.close()

    def reconciled() -> dict[str, Any] | None:
        answer = api.get(f"/api/v1/jobs/{job_id}")
        return answer.json() if answer.status_code == 200 and answer.json()["state"] in {
            "reconciled", "mismatch", "failed"} else None

    job = wait_until(reconciled, timeout=60, what="the job to end, through the API")
    assert job["state"] == "reconciled"
    assert job["idempotency_key"] == request["idempotency_key"]
    leg = job["legs"][0]
    # One call: the cancel's answer carries the summary, which adds up (no read of the batch).
    assert leg["state"] == "cancelled" and leg["attempts"] == 1
    assert leg["reconciliation"]["reported"]["cancelled_amount"] == "3000.00"
    listed = api.get("/api/v1/jobs", params={"state": "reconciled"}).json()
    assert job_id in [j["id"] for j in listed["jobs"]]
    assert sandbox.effects("sixdot50") == {f"sixdot50:cancel_batch:{batch}": 1}


def test_api_without_token_answers_401(stack: Stack) -> None:
    """The status API refuses a request without, or with a wrong, bearer token."""
    assert httpx.get(f"{stack.receiver_url}/api/v1/jobs").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{stack.receiver_url}/api/v1/jobs/x", headers=wrong).status_code == 401
    assert httpx.get(f"{stack.receiver_url}/healthz").status_code == 200


def test_readyz_sees_ledger_and_redis(stack: Stack) -> None:
    """/readyz answers ready when the ledger and Redis answer."""
    answer = httpx.get(f"{stack.receiver_url}/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"ledger": "ok", "redis": "ok"}
