"""The Celery side of the ``Dispatcher`` port: internal tasks, sent by name."""

from __future__ import annotations

from celery import Celery

from worker.task_names import (
    INTERNAL_QUEUE,
    PAGE_ARRIVED,
    PROCESS_LEG,
    PROCESS_LEGS,
    READ_EVIDENCE,
    RECOVER_CALLBACKS,
    SETTLE_CALLBACKS,
)


class CeleryDispatcher:
    """Sends through the app it is given; it never imports one (``worker.celery_app`` builds the
    worker's app at import time, and the receiver builds its own)."""

    def __init__(self, app: Celery) -> None:
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

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        """Sent by the receiver after a page is committed; the worker settles its legs."""
        self._app.send_task(PAGE_ARRIVED, args=[bulk_payment_id, code], queue=INTERNAL_QUEUE,
                            retry=False)
