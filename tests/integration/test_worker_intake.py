"""Messages Celery refuses before any task runs, published raw to a real worker on a real Redis:
each producer message becomes an invalid job, is acknowledged, and the worker goes on."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import job_answer, wait_for_job
from worker.domain.request import invalid_job_id, job_id_for_key
from worker.ledger.views import LedgerReads
from worker.producer import SUBMIT_TASK, publish
from worker.task_names import INTERNAL_QUEUE, SUBMIT_QUEUE

pytestmark = pytest.mark.integration

STACK_ENV = {"CANCELFLOW_HTTP_TIMEOUT_SECONDS": "2"}


@dataclass
class Raw:
    """One message as a foreign producer might publish it."""

    body: bytes
    content_type: str = "application/json"
    task: str | None = SUBMIT_TASK
    queue: str = SUBMIT_QUEUE
    headers: dict[str, Any] | None = None
    task_id: str = ""

    def publish(self, app: Celery) -> Raw:
        self.task_id = str(uuid.uuid4())
        headers = {"lang": "py", "id": self.task_id, "root_id": self.task_id,
                   "parent_id": None, "group": None, "retries": 0, "eta": None,
                   "expires": None, **(self.headers or {})}
        if self.task is not None:
            headers["task"] = self.task
        with app.connection_for_write() as conn:
            conn.Producer().publish(self.body, routing_key=self.queue, exchange=self.queue,
                                    content_type=self.content_type, content_encoding="utf-8",
                                    headers=headers)
        return self

    @property
    def job_id(self) -> str:
        return str(invalid_job_id(hashlib.sha256(self.body).hexdigest()))


def request_body(nonce: str) -> dict[str, Any]:
    """A request with no usable key, so the job id comes from the body's digest."""
    return {"legs": [], "nonce": nonce}


def cases() -> dict[str, tuple[Raw, str]]:
    """Each refused message, and the field its job's error names."""
    nonce = uuid.uuid4().hex
    good = json.dumps([[], {"request": request_body(nonce)}, {}]).encode()
    return {
        "kwargs not an object": (Raw(json.dumps([[], [nonce], {}]).encode()), "kwargs"),
        "args not a list": (
            Raw(json.dumps([5, {"request": request_body(nonce)}, {}]).encode()), "args"),
        "body not JSON": (Raw(b"{not json " + nonce.encode()), "body"),
        "unknown content type": (
            Raw(good + b" ", content_type="application/x-yaml"), "content_type"),
        "unknown task on the producers' queue": (
            Raw(good + b"  ", task="cancellations.cancel"), "task"),
        "internal task on the producers' queue": (
            Raw(good + b"   ", task="cancelflow.sweep"), "task"),
        # These two stopped the worker (an exception nothing caught in the consumer).
        "body a JSON object": (Raw(json.dumps({"nonce": nonce}).encode()), "body"),
        "timelimit not a pair": (Raw(good + b"    ", headers={"timelimit": 5}), "timelimit"),
    }


@pytest.fixture(scope="module")
def broker(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env["CANCELFLOW_REDIS_URL"])
    yield client
    client.close()


def unacknowledged(broker: redis.Redis, task_ids: set[str]) -> set[str]:
    """Which of the tasks still sit in a queue or among Redis's unacknowledged messages."""
    held = [*broker.hvals("unacked"), *broker.lrange(SUBMIT_QUEUE, 0, -1),
            *broker.lrange(INTERNAL_QUEUE, 0, -1)]
    return {task_id for task_id in task_ids if any(task_id.encode() in raw for raw in held)}


def test_each_refused_message_becomes_an_invalid_job(
    stack: Stack, producer: Celery, ledger: Engine, sandbox: SandboxControl,
    broker: redis.Redis,
) -> None:
    """Given messages Celery cannot run, each is an invalid job with a readable error, each is
    acknowledged, and the same worker process then cancels a valid job."""
    worker_pid = stack.processes["worker"].pid
    published = {name: (raw.publish(producer), field) for name, (raw, field) in cases().items()}
    for name, (raw, field) in published.items():
        job = wait_for_job(ledger, raw.job_id)
        assert job["state"] == "invalid", name
        assert [error["field"] for error in job["errors"]] == [field], (name, job["errors"])
        assert len(job["errors"][0]["error"]) > 20, (name, job["errors"])
    ids = {raw.task_id for raw, _ in published.values()}
    wait_until(lambda: not unacknowledged(broker, ids), timeout=10,
               what="every refused message to be acknowledged")
    batch = sandbox.seed_batch(count=1, amount_each="1.00")["id"]
    good = publish(producer, {"idempotency_key": f"in-{uuid.uuid4()}",
                              "legs": [{"provider": "sixdot50", "batch_id": batch}]})
    assert wait_for_job(ledger, good or "")["state"] == "reconciled"
    assert stack.processes["worker"].poll() is None
    assert stack.processes["worker"].pid == worker_pid


def test_refused_message_with_a_key_is_filed_under_the_key(
    producer: Celery, ledger: Engine
) -> None:
    """A refused message whose request carries a valid key is filed under that key's job id."""
    key = f"in-key-{uuid.uuid4()}"
    Raw(json.dumps([None, {"request": {"idempotency_key": key}}, {}]).encode()).publish(producer)
    job = wait_for_job(ledger, str(job_id_for_key(key)))
    assert (job["state"], job["idempotency_key"]) == ("invalid", key)
    assert job["errors"] == [{"field": "args", "error": "args must be a JSON array, not null"}]


def test_a_malformed_internal_message_is_dropped_not_fatal(
    stack: Stack, producer: Celery, ledger: Engine, broker: redis.Redis,
    sandbox: SandboxControl,
) -> None:
    """A JSON object as the body of an internal task is refused and acknowledged; no job is
    filed for it (it is not a producer's), and the worker keeps running."""
    raw = Raw(json.dumps({"nonce": uuid.uuid4().hex}).encode(), task="cancelflow.sweep",
              queue=INTERNAL_QUEUE).publish(producer)
    wait_until(lambda: not unacknowledged(broker, {raw.task_id}), timeout=10,
               what="the internal message to be dropped")
    batch = sandbox.seed_batch(count=1, amount_each="1.00")["id"]
    good = publish(producer, {"idempotency_key": f"in-{uuid.uuid4()}",
                              "legs": [{"provider": "sixdot50", "batch_id": batch}]})
    assert wait_for_job(ledger, good or "")["state"] == "reconciled"
    assert job_answer(LedgerReads(ledger), raw.job_id) is None
