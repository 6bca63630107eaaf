"""The producers' queue read several messages at a time (tasks/batch_intake.py), on a real Redis
and a real worker: messages filed as kombu files them (so kombu's own sweep restores them after a
crash), clean submit calls run and acknowledged, everything else left to Celery's consumer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from devstack.sandbox_control import SandboxControl
from devstack.waiting import wait_until
from tasks.batch_intake import UNACKED, Intake, queue_lists, submit_call
from tasks.requests import body_digest
from tests.support import wait_for_job
from worker.celery_app import create_celery
from worker.producer import publish
from worker.settings import Settings
from worker.task_names import INTERNAL_QUEUE, SUBMIT_QUEUE, SUBMIT_TASK

pytestmark = pytest.mark.integration

MERCHANT = "T123456789"


@pytest.fixture
def idle_broker(redis_server: str) -> Iterator[tuple[Celery, redis.Redis]]:
    """A producer and a client on a Redis database no worker reads."""
    url = f"{redis_server.rsplit('/', 1)[0]}/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    producer = create_celery(Settings(redis_url=url))
    yield producer, client
    producer.close()
    client.flushdb()
    client.close()


def _intake(client: redis.Redis) -> Intake:
    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("nothing runs in this test")

    return Intake(client, never, never, concurrency=4)


def test_a_taken_message_is_filed_as_kombu_files_it_and_kombu_restores_it(
    idle_broker: tuple[Celery, redis.Redis]
) -> None:
    """Taken messages wait among kombu's unacknowledged ones; kombu's own restore (what its
    sweep runs after a worker dies) puts each back in the queue, byte for byte the same call."""
    producer, client = idle_broker
    requests = [{"idempotency_key": f"bi-{uuid.uuid4()}", "legs": []} for _ in range(3)]
    for request in requests:
        publish(producer, request)
    taken = _intake(client).take(8)
    assert len(taken) == 3 and all(one.tag for one in taken)
    assert client.llen(SUBMIT_QUEUE) == 0
    assert {tag.decode() for tag in client.hkeys(UNACKED)} == {one.tag for one in taken}
    calls = [submit_call(one.raw) for one in taken]
    assert [call.message.kwargs["request"] if call else None for call in calls] == requests

    with Connection(producer.conf.broker_url) as conn:
        qos = conn.default_channel.qos
        for one in taken:
            qos.restore_by_tag(one.tag)
        assert client.hlen(UNACKED) == 0
        again = [submit_call(raw) for raw in client.lrange(SUBMIT_QUEUE, 0, -1)]
        assert all(again) and all(calls)
        assert {c.task_id: c.message for c in again if c} == {c.task_id: c.message
                                                              for c in calls if c}
        # Celery's way reads the same body: a keyless invalid job gets the same id either way.
        delivered = conn.default_channel.basic_get(SUBMIT_QUEUE)
        digests = {c.task_id: c.message.digest for c in calls if c}
        assert body_digest(delivered.body) == digests[delivered.headers["id"]]


def _variants() -> dict[str, Callable[[dict[str, Any]], None]]:
    def body(envelope: dict[str, Any], payload: Any) -> None:
        envelope["body"] = base64.b64encode(json.dumps(payload).encode()).decode()

    return {
        "another task": lambda e: e["headers"].update(task="cancelflow.sweep"),
        "a countdown": lambda e: e["headers"].update(eta="2030-01-01T00:00:00+00:00"),
        "an expiry": lambda e: e["headers"].update(expires="2030-01-01T00:00:00+00:00"),
        "no task id": lambda e: e["headers"].pop("id"),
        "another content type": lambda e: e.update({"content-type": "application/x-yaml"}),
        "a body not base64": lambda e: e.update(body="!!" + e["body"]),
        "a body not JSON": lambda e: e.update(body=base64.b64encode(b"{nope").decode()),
        "a body of protocol 1": lambda e: body(e, {"args": [], "kwargs": {}}),
        "kwargs not an object": lambda e: body(e, [[], [], {}]),
        "timelimit not a pair": lambda e: e["headers"].update(timelimit=5),
    }


@pytest.mark.parametrize("variant", sorted(_variants()))
def test_only_a_clean_submit_call_is_run_by_the_intake(
    idle_broker: tuple[Celery, redis.Redis], variant: str
) -> None:
    """Anything but a clean, immediate submit call is left to Celery's consumer (None)."""
    producer, client = idle_broker
    publish(producer, {"idempotency_key": f"bi-{uuid.uuid4()}", "legs": []})
    raw = client.rpop(SUBMIT_QUEUE)
    assert submit_call(raw) is not None
    envelope = json.loads(raw)
    _variants()[variant](envelope)
    assert submit_call(json.dumps(envelope).encode()) is None


class _Recorded:
    """The step's run and event callbacks, recording what they were given."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.runs: list[dict[str, Any]] = []
        self.events: list[tuple[str, str]] = []

    def run(self, message: Any) -> dict[str, Any]:
        self.runs.append(message.kwargs["request"])
        if self.fail:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return {"job_id": "j", "created": True, "state": "pending"}

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields["uuid"]))


@pytest.mark.parametrize("fail", [False, True], ids=["ran", "failed"])
def test_a_run_that_ends_is_acknowledged_and_one_that_fails_goes_to_celery(
    idle_broker: tuple[Celery, redis.Redis], fail: bool
) -> None:
    """The step's own threads: a run that returns has its filed copy removed; one that raises
    has its message, byte for byte, moved to the internal queue, where the task's retries take
    it. Either way nothing is left filed, and the events say what happened."""
    producer, client = idle_broker
    request = {"idempotency_key": f"bi-{uuid.uuid4()}", "legs": []}
    publish(producer, request)
    published = client.lindex(SUBMIT_QUEUE, 0)
    task_id = json.loads(published)["headers"]["id"]
    recorded = _Recorded(fail)
    intake = Intake(client, recorded.run, recorded.event, concurrency=2)
    intake.start()
    try:
        wait_until(lambda: client.llen(SUBMIT_QUEUE) == 0 and client.hlen(UNACKED) == 0,
                   timeout=10, what="the message taken and its filed copy removed")
    finally:
        intake.stop()
    assert recorded.runs == [request]
    kinds = [kind for kind, uuid_ in recorded.events if uuid_ == task_id]
    if fail:
        assert kinds == ["task-received", "task-started", "task-retried"]
        assert client.lrange(INTERNAL_QUEUE, 0, -1) == [published]
        assert intake.handed == 1
    else:
        assert kinds == ["task-received", "task-started", "task-succeeded"]
        assert client.llen(INTERNAL_QUEUE) == 0


def test_priority_lists_are_read_in_kombus_order() -> None:
    assert queue_lists("q") == ["q", "q\x06\x163", "q\x06\x166", "q\x06\x169"]


# With a running worker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(stack: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env["CANCELFLOW_REDIS_URL"])
    yield client
    client.close()


def test_jobs_end_and_every_message_is_acknowledged(
    producer: Celery, ledger: Engine, sandbox: SandboxControl, broker: redis.Redis
) -> None:
    """Twenty one-payment jobs at once: each ends cancelled, and no message is left in the
    queue or among the unacknowledged."""
    references = [f"bi-{uuid.uuid4()}" for _ in range(20)]
    for reference in references:
        sandbox.seed_payment(merchant=MERCHANT, reference=reference, state="Authorized",
                             amount=1000)
    job_ids = [publish(producer, {"idempotency_key": f"bi-{uuid.uuid4()}", "legs": [
        {"provider": "bambora", "merchant": MERCHANT, "payment_reference": reference}]})
        for reference in references]
    for job_id in job_ids:
        job = wait_for_job(ledger, job_id or "")
        assert (job["state"], job["legs"][0]["state"]) == ("reconciled", "cancelled")
    wait_until(lambda: broker.hlen(UNACKED) == 0 and broker.llen(SUBMIT_QUEUE) == 0,
               timeout=10, what="every message acknowledged")


def test_a_message_with_a_priority_is_taken_too(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """kombu keeps prioritized messages in lists beside the queue; the step reads them too."""
    batch = sandbox.seed_batch(count=1, amount_each="1.00")["id"]
    key = f"bi-pri-{uuid.uuid4()}"
    producer.send_task(SUBMIT_TASK, kwargs={"request": {
        "idempotency_key": key, "legs": [{"provider": "sixdot50", "batch_id": batch}]}},
        queue=SUBMIT_QUEUE, priority=9)
    assert wait_for_job(ledger, publish_key_id(key))["state"] == "reconciled"


def test_a_message_with_a_countdown_runs_at_its_time(
    producer: Celery, ledger: Engine, sandbox: SandboxControl
) -> None:
    """A countdown is Celery's to keep: the job is not stored before it is due."""
    batch = sandbox.seed_batch(count=1, amount_each="1.00")["id"]
    key = f"bi-eta-{uuid.uuid4()}"
    sent = time.time()
    producer.send_task(SUBMIT_TASK, kwargs={"request": {
        "idempotency_key": key, "legs": [{"provider": "sixdot50", "batch_id": batch}]}},
        queue=SUBMIT_QUEUE, countdown=2)
    job = wait_for_job(ledger, publish_key_id(key), timeout=30)
    assert job["state"] == "reconciled"
    assert datetime.fromisoformat(job["created_at"]).timestamp() >= sent + 2


def publish_key_id(key: str) -> str:
    from worker.domain.request import job_id_for_key

    return str(job_id_for_key(key))

