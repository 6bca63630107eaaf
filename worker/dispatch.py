"""The Celery side of the ``Dispatcher`` port: internal tasks, sent by name.

Every message carries readable arguments (Celery's ``argsrepr``), which Flower shows instead of
a bare list of leg ids: ``job=<uuid> provider=bambora legs=32`` from the caller's ``TaskLabel``,
or the leg count when the caller gave none. Nothing secret travels in these tasks' arguments.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from worker import task_names
from worker.domain.task_label import TaskLabel
from worker.task_names import INTERNAL_QUEUE


def readable(label: TaskLabel | None, legs: int = 1) -> dict[str, str]:
    """The ``argsrepr``/``kwargsrepr`` options for a message about ``legs`` legs."""
    return {"argsrepr": str(label or TaskLabel(None, None, legs)), "kwargsrepr": "{}"}


class CeleryDispatcher:
    """Sends through the app it is given; it never imports one (``worker.celery_app`` builds the
    worker's app at import time, and the receiver builds its own)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def _send(self, task: str, args: list[Any], **options: Any) -> None:
        self._app.send_task(task, args=args, queue=INTERNAL_QUEUE, **options)

    def process_leg(self, leg_id: str, countdown: float = 0, *,
                    label: TaskLabel | None = None) -> None:
        self._send(task_names.PROCESS_LEG, [leg_id], countdown=countdown or None,
                   **readable(label))

    def process_legs(self, leg_ids: list[str], *, label: TaskLabel | None = None) -> None:
        self._send(task_names.PROCESS_LEGS, [leg_ids], **readable(label, len(leg_ids)))

    def read_evidence(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self._send(task_names.READ_EVIDENCE, [leg_id], **readable(label))

    def settle_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self._send(task_names.SETTLE_CALLBACKS, [leg_id], **readable(label))

    def recover_callbacks(self, leg_id: str, *, label: TaskLabel | None = None) -> None:
        self._send(task_names.RECOVER_CALLBACKS, [leg_id], **readable(label))

    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None:
        """Outcomes (issue 17): one attempt at an owed webhook or reply message."""
        self._send(task_names.DELIVER_OUTCOME, [delivery_id], countdown=countdown or None,
                   argsrepr=f"delivery={delivery_id}", kwargsrepr="{}")

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        """Sent by the receiver after a page is committed; the worker settles its legs."""
        self._send(task_names.PAGE_ARRIVED, [bulk_payment_id, code], retry=False,
                   argsrepr=f"bulk_payment={bulk_payment_id} code={code}", kwargsrepr="{}")
