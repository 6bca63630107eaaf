"""The Celery side of the ``Dispatcher`` port: internal tasks, sent by name."""

from __future__ import annotations

from celery import Celery

INTERNAL_QUEUE = "cancelflow.internal"
PROCESS_LEG = "cancelflow.process_leg"
PROCESS_LEGS = "cancelflow.process_legs"
READ_EVIDENCE = "cancelflow.read_evidence"
SWEEP = "cancelflow.sweep"
SETTLE_CALLBACKS = "cancelflow.settle_callbacks"
PAGE_ARRIVED = "cancelflow.page_arrived"
RECOVER_CALLBACKS = "cancelflow.recover_callbacks"
FILE_INVALID = "cancelflow.file_invalid"
DELIVER_OUTCOME = "cancelflow.deliver_outcome"  # outcomes (issue 17)


class CeleryDispatcher:
    def __init__(self, app: Celery | None = None) -> None:
        if app is None:
            from worker.celery_app import app as default_app

            app = default_app
        self._app = app

    def process_leg(self, leg_id: str, countdown: float = 0) -> None:
        self._app.send_task(
            PROCESS_LEG, args=[leg_id], queue=INTERNAL_QUEUE, countdown=countdown or None
        )

    def process_legs(self, leg_ids: list[str]) -> None:
        self._app.send_task(PROCESS_LEGS, args=[leg_ids], queue=INTERNAL_QUEUE)

    def read_evidence(self, leg_id: str) -> None:
        self._app.send_task(READ_EVIDENCE, args=[leg_id], queue=INTERNAL_QUEUE)

    def settle_callbacks(self, leg_id: str) -> None:
        self._app.send_task(SETTLE_CALLBACKS, args=[leg_id], queue=INTERNAL_QUEUE)

    def recover_callbacks(self, leg_id: str) -> None:
        self._app.send_task(RECOVER_CALLBACKS, args=[leg_id], queue=INTERNAL_QUEUE)

    def deliver_outcome(self, delivery_id: str, countdown: float = 0) -> None:
        """Outcomes (issue 17): one attempt at an owed webhook or reply message."""
        self._app.send_task(DELIVER_OUTCOME, args=[delivery_id], queue=INTERNAL_QUEUE,
                            countdown=countdown or None)

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        """Sent by the receiver after a page is committed; the worker settles its legs."""
        self._app.send_task(PAGE_ARRIVED, args=[bulk_payment_id, code], queue=INTERNAL_QUEUE,
                            retry=False)
