"""Outcomes (issue 17): the real channels to producers: signed webhooks over httpx, and reply
messages through the Celery app. The signing secret stays here: never logged, never stored."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

import httpx
from celery import Celery
from standardwebhooks import Webhook

from worker.services.ports import DeliveryError
from worker.settings import Settings, load_settings


def webhook_headers(secret: str, msg_id: str, when: datetime, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers: the signature is ``v1,`` + base64 HMAC-SHA256, keyed with the
    decoded secret, over ``"{webhook-id}.{webhook-timestamp}.{body}"``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


class OutcomeSender:
    """The ``OutcomeChannels`` port over one long-lived HTTP client and the Celery app."""

    def __init__(self, client: httpx.Client, app: Celery, notify_secret: str | None) -> None:
        self._client = client
        self._app = app
        self._secret = notify_secret

    def post_webhook(self, url: str, msg_id: str, when: datetime, body: bytes) -> int:
        if self._secret is None:
            # The request was accepted with a secret that is gone since: nothing can sign it.
            raise DeliveryError("NotifySecretMissing")
        headers = {"content-type": "application/json",
                   **webhook_headers(self._secret, msg_id, when, body)}
        try:
            # Only the status counts: the answer's body is never read (it could be anything).
            with self._client.stream("POST", url, content=body, headers=headers) as answer:
                return answer.status_code
        except httpx.HTTPError as exc:
            raise DeliveryError(type(exc).__name__) from exc

    def publish_reply(self, task: str, queue: str, job: dict[str, Any]) -> None:
        try:
            self._app.send_task(task, kwargs={"job": job}, queue=queue, serializer="json")
        except Exception as exc:  # kombu's and redis's errors share no base class
            raise DeliveryError(type(exc).__name__) from exc


def build_sender(settings: Settings, app: Celery) -> OutcomeSender:
    from worker.bootstrap import http_client

    secret = settings.notify_secret.get_secret_value() if settings.notify_secret else None
    return OutcomeSender(http_client(settings), app, secret)


_lock = threading.Lock()
_sender: tuple[int, OutcomeSender] | None = None


def process_sender() -> OutcomeSender:
    """This process's sender, built on first use (and again in a forked child)."""
    global _sender
    with _lock:
        if _sender is None or _sender[0] != os.getpid():
            from worker.celery_app import app

            _sender = (os.getpid(), build_sender(load_settings(), app))
        return _sender[1]
