"""When the worker's batch intake takes the producers' queue from Celery's consumer, and when it
leaves it there (tasks/batch_intake.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kombu import Queue

from tasks.batch_intake import BatchIntake
from worker.task_names import INTERNAL_QUEUE, SUBMIT_QUEUE


class _TaskConsumer:
    def __init__(self, *names: str) -> None:
        self.queues = [Queue(name) for name in names]
        self.cancelled: list[str] = []

    def cancel_by_queue(self, name: str) -> None:
        self.cancelled.append(name)


def _consumer(broker_url: str, *queues: str) -> Any:
    return SimpleNamespace(task_consumer=_TaskConsumer(*queues),
                           app=SimpleNamespace(conf=SimpleNamespace(broker_url=broker_url)))


@pytest.mark.parametrize("url", ["sentinel://10.0.0.1:26379", "amqp://guest@rabbit//", ""])
def test_a_broker_that_is_not_plain_redis_leaves_the_queue_to_celery(url: str) -> None:
    c = _consumer(url, SUBMIT_QUEUE, INTERNAL_QUEUE)
    step = BatchIntake(c)
    step.start(c)
    assert (step.intake, c.task_consumer.cancelled) == (None, [])


def test_a_worker_not_reading_the_producers_queue_runs_no_intake() -> None:
    c = _consumer("redis://127.0.0.1:6379/0", INTERNAL_QUEUE)
    step = BatchIntake(c)
    step.start(c)
    assert (step.intake, c.task_consumer.cancelled) == (None, [])
