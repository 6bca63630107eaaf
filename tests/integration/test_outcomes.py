"""Outcomes (issue 17) through real processes: a worker and beat, Redis, the sandbox, a real HTTP
receiver for notify_url and a real Celery consumer for reply_to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine
from standardwebhooks import Webhook

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import job_answer, wait_for_job
from worker.domain.deliveries import OutcomeKind
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.ledger.views import LedgerReads
from worker.producer import publish

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STACK_ENV = {
    "CANCELFLOW_NOTIFY_SECRET": SECRET,
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "2",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
    "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
}
STACK_PROCESSES = ("worker", "beat")
ROOT = Path(__file__).resolve().parents[2]


class Receiver(ThreadingHTTPServer):
    """A producer's webhook endpoint: answers 500 to the first POST, 200 to the others."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/cancelflow?tenant=t1"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:
            self.server.received.append((body, dict(self.headers.items())))
            first = len(self.server.received) == 1
        self.send_response(500 if first else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def reply_consumer(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A Celery worker of the producer's own app on a queue of its own: (task, queue, file)."""
    task, queue, out = "orders.cancellation_finished", f"replies-{uuid.uuid4().hex}", \
        tmp_path / "replies.jsonl"
    env = {**os.environ, "REPLY_BROKER": stack.settings().redis_url, "REPLY_TASK": task,
           "REPLY_FILE": str(out), "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "reply-consumer.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.reply_consumer", "worker", "-Q", queue,
         "--pool", "solo", "--concurrency", "1", "--without-heartbeat", "--without-gossip",
         "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield task, queue, out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_a_webhook_refused_once_is_delivered_signed_on_the_second_attempt(
    producer: Celery, ledger: Engine, sandbox: SandboxControl, receiver: Receiver
) -> None:
    """Given a receiver whose first answer is 500, when a job with notify_url ends, the receiver
    gets a second, verified delivery of the job as the API shows it, and the job lists the
    notification delivered after 2 attempts."""
    batch = sandbox.seed_batch(count=3, amount_each="10.00")["id"]
    job_id = publish(producer, {"idempotency_key": f"it-{uuid.uuid4()}",
                                "legs": [{"provider": "sixdot50", "batch_id": batch}],
                                "notify_url": receiver.url})
    assert job_id is not None
    assert wait_for_job(ledger, job_id)["state"] == "reconciled"

    def delivered() -> dict[str, Any] | None:
        job = job_answer(LedgerReads(ledger), job_id)
        listed = job["notifications"] if job else []
        return listed[0] if listed and listed[0]["status"] == "delivered" else None

    notification = wait_until(delivered, timeout=30, what="the webhook to be delivered")
    assert (notification["attempts"], notification["last_http_status"]) == (2, 200)
    assert notification["url"] == receiver.url and notification["final_state"] == "reconciled"
    assert len(receiver.received) == 2
    for body, headers in receiver.received:
        event = Webhook(SECRET).verify(body, headers)
        assert headers["webhook-id"] == f"{job_id}:reconciled"
        assert event["type"] == "job.finished"
        assert event["data"]["id"] == job_id and event["data"]["state"] == "reconciled"
        assert event["data"]["legs"][0]["state"] == "cancelled"


def test_a_reply_message_reaches_the_producers_celery_worker(
    producer: Celery, ledger: Engine, sandbox: SandboxControl,
    reply_consumer: tuple[str, str, Path],
) -> None:
    """Given reply_to, when the job ends, the producer's own worker runs NAME on QUEUE with
    kwargs={"job": JOB} carrying the final state."""
    task, queue, out = reply_consumer
    batch = sandbox.seed_batch(count=2, amount_each="5.00", statusCode="CLOSED")["id"]
    job_id = publish(producer, {"idempotency_key": f"it-{uuid.uuid4()}",
                                "legs": [{"provider": "sixdot50", "batch_id": batch}],
                                "reply_to": {"task": task, "queue": queue}})
    assert job_id is not None
    assert wait_for_job(ledger, job_id)["state"] == "failed"
    lines = wait_until(lambda: out.exists() and out.read_text().splitlines(), timeout=60,
                       what="the reply message to be consumed")
    [received] = [json.loads(line) for line in lines]
    assert set(received) == {"job"}
    assert received["job"]["id"] == job_id and received["job"]["state"] == "failed"
    assert received["job"]["legs"][0]["reason"] == "not_cancellable"
    job = job_answer(LedgerReads(ledger), job_id)
    assert job is not None
    assert [(n["kind"], n["status"], n["reply_to"]) for n in job["notifications"]] == [
        ("reply", "delivered", {"task": task, "queue": queue})]


def test_a_reply_owed_but_never_dispatched_is_published_by_the_sweep(
    producer: Celery, ledger: Engine, sandbox: SandboxControl,
    reply_consumer: tuple[str, str, Path],
) -> None:
    """Given a final job whose reply was owed an hour ago but never dispatched (its worker was
    killed after the commit), beat's sweep dispatches it and the producer's worker gets it."""
    task, queue, out = reply_consumer
    batch = sandbox.seed_batch(count=1, amount_each="5.00", statusCode="CLOSED")["id"]
    job_id = publish(producer, {"idempotency_key": f"it-{uuid.uuid4()}",
                                "legs": [{"provider": "sixdot50", "batch_id": batch}]})
    assert job_id is not None and wait_for_job(ledger, job_id)["state"] == "failed"
    with SqlUnitOfWorkFactory(ledger)() as unit:
        unit.outcomes.owe(job_id, OutcomeKind.REPLY, "failed",
                                         {"task": task, "queue": queue},
                                         datetime.now(UTC) - timedelta(hours=1))
        unit.commit()
    lines = wait_until(lambda: out.exists() and out.read_text().splitlines(), timeout=60,
                       what="the swept reply message to be consumed")
    [received] = [json.loads(line) for line in lines]
    assert received["job"]["id"] == job_id and received["job"]["state"] == "failed"
