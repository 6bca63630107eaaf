"""Flower, as the operators use it: a job's tasks by name with readable args, behind basic auth."""

from __future__ import annotations

import base64
import html
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery import Celery
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import wait_for_job
from worker.dispatch import readable
from worker.domain.task_label import TaskLabel
from worker.producer import publish
from worker.task_names import INTERNAL_QUEUE, NOOP, PROCESS_LEG, PROCESS_LEGS

pytestmark = pytest.mark.e2e

MERCHANT = "T123456789"
# Two Bambora calls at a time: the submit task cancels the first two legs itself, the other two
# go out as one ``process_legs`` message, which Flower must show as the job's.
STACK_ENV = {
    "CANCELFLOW_CONCURRENCY_BAMBORA": "2",
    "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "1",
    "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
    "CANCELFLOW_RETRY_MAX_SECONDS": "1",
}
STACK_PROCESSES = ("worker",)
FLOWER_AUTH = f"operator:{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def flower(stack: Stack, producer: Celery) -> Iterator[httpx.Client]:
    """``celery -A worker flower`` on the stack's broker, listening to the worker's events, and a
    client that logs in to it.

    Flower answers its health check before it has subscribed to the events, and an event sent
    before that is never seen: no-op tasks are sent until Flower lists one as succeeded.
    """
    stack.start_flower(FLOWER_AUTH)
    user, password = FLOWER_AUTH.split(":", 1)
    probe_counter = f"flower-probe:{uuid.uuid4()}"

    def events_reach_flower(client: httpx.Client) -> bool:
        producer.send_task(NOOP, args=[probe_counter])
        return _task_where(client, name=NOOP, state="SUCCESS",
                           args=lambda a: isinstance(a, str) and probe_counter in a) is not None

    with httpx.Client(base_url=stack.flower_url, timeout=5, auth=(user, password)) as client:
        wait_until(lambda: events_reach_flower(client), timeout=30, interval=0.5,
                   what="Flower listing a task from the worker's events")
        yield client


@pytest.fixture(scope="module")
def job(producer: Celery, ledger: Engine, sandbox_url: str) -> dict[str, Any]:
    """A four-leg Bambora job whose third leg meets two 503s (one Celery retry), reconciled."""
    with SandboxControl(sandbox_url) as sandbox:
        sandbox.clear_faults()
        references = [f"ref-{uuid.uuid4()}" for _ in range(4)]
        for reference in references:
            sandbox.seed_payment(merchant=MERCHANT, reference=reference, state="Authorized",
                                 amount=12550)
        sandbox.add_fault(provider="bambora", operation="cancel_payment",
                          target=f"{MERCHANT}/{references[2]}", action="status", status=503,
                          times=2)
        job_id = publish(producer, {"idempotency_key": f"flower-{uuid.uuid4()}", "legs": [
            {"provider": "bambora", "merchant": MERCHANT, "payment_reference": reference}
            for reference in references]})
        assert job_id is not None
        return wait_for_job(ledger, job_id, timeout=60)


def _tasks(flower: httpx.Client) -> dict[str, dict[str, Any]]:
    answer = flower.get("/api/tasks")
    answer.raise_for_status()
    tasks: dict[str, dict[str, Any]] = answer.json()
    return tasks


def _task_where(flower: httpx.Client, **wanted: Any) -> dict[str, Any] | None:
    """The first task Flower lists whose fields hold the wanted values (a callable: a test)."""
    for task in _tasks(flower).values():
        if all(want(task.get(key)) if callable(want) else task.get(key) == want
               for key, want in wanted.items()):
            return task
    return None


def test_flower_lists_the_jobs_tasks_with_readable_args_and_a_retry(
    flower: httpx.Client, job: dict[str, Any]
) -> None:
    """Flower's API shows the job's batch and the retried leg by name, args naming the job."""
    assert job["state"] == "reconciled"
    batch_args = str(TaskLabel(job["id"], "bambora", 2))
    # Task events reach Flower after the ledger has the job's end: wait for the success event.
    batch = wait_until(
        lambda: _task_where(flower, name=PROCESS_LEGS, args=batch_args, state="SUCCESS"),
        timeout=30, what="the job's process_legs task, succeeded, in Flower")
    assert batch["kwargs"] == "{}"
    leg_args = str(TaskLabel(job["id"], "bambora", 1))
    retried = wait_until(
        lambda: _task_where(flower, name=PROCESS_LEG, args=leg_args, state="SUCCESS",
                            retries=lambda n: isinstance(n, int) and n >= 1),
        timeout=30, what="the retried process_leg task, succeeded, in Flower")
    assert "ref-" not in str(retried["args"]), "the args name the job, not the targets"
    # The producer's own message: its kwargs are the request, which carries no secret.
    wait_until(
        lambda: _task_where(flower, name="cancellations.submit", state="SUCCESS",
                            kwargs=lambda k: isinstance(k, str) and job["idempotency_key"] in k),
        timeout=30, what="the job's cancellations.submit task, succeeded, in Flower")


def test_flower_shows_a_failed_task_with_its_exception(
    flower: httpx.Client, producer: Celery, job: dict[str, Any]
) -> None:
    """A message its task cannot take fails; Flower lists it FAILURE with the exception."""
    label = TaskLabel(job["id"], "bambora", 1)
    task_id = str(uuid.uuid4())
    producer.send_task(PROCESS_LEG, args=[job["legs"][0]["id"], "one too many"],
                       queue=INTERNAL_QUEUE, task_id=task_id, **readable(label))
    failed = wait_until(lambda: _task_where(flower, uuid=task_id, state="FAILURE"),
                        timeout=30, what="the failed task in Flower")
    assert failed["name"] == PROCESS_LEG and failed["args"] == str(label)
    assert "TypeError" in failed["exception"]


def test_flower_refuses_without_credentials(stack: Stack, flower: httpx.Client) -> None:
    """Without basic auth, Flower answers 401 for its API and its pages."""
    for path in ("/api/tasks", "/tasks", "/"):
        assert httpx.get(f"{stack.flower_url}{path}", timeout=5).status_code == 401
        assert httpx.get(f"{stack.flower_url}{path}", timeout=5,
                         auth=("operator", "wrong")).status_code == 401


def test_flower_task_page_names_the_task_and_its_args(
    flower: httpx.Client, job: dict[str, Any]
) -> None:
    """The task page Flower serves names the task and shows the job's readable args."""
    batch_args = str(TaskLabel(job["id"], "bambora", 2))
    batch = wait_until(lambda: _task_where(flower, name=PROCESS_LEGS, args=batch_args),
                       timeout=30, what="the job's process_legs task in Flower")
    page = flower.get(f"/task/{batch['uuid']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert PROCESS_LEGS in text and batch_args in text


def test_flower_task_page_in_chromium(
    stack: Stack, flower: httpx.Client, job: dict[str, Any], browser: WebDriver
) -> None:
    """In Chromium, logged in, Flower's task page shows the task's name and readable args."""
    batch_args = str(TaskLabel(job["id"], "bambora", 2))
    batch = wait_until(lambda: _task_where(flower, name=PROCESS_LEGS, args=batch_args),
                       timeout=30, what="the job's process_legs task in Flower")
    token = base64.b64encode(FLOWER_AUTH.encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    browser.get(f"{stack.flower_url}/task/{batch['uuid']}")
    WebDriverWait(browser, 15).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "body"), PROCESS_LEGS))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert batch_args in body
    assert batch["uuid"] in body
