"""Outcomes (issue 17): the webhook signature, the retry bound, the request's new fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from worker.celery_app import create_celery
from worker.domain.request import CancellationRequest
from worker.outcome_channels import OutcomeSender
from worker.services.context import RetryPolicy
from worker.services.outcomes import (
    DELIVERY_WINDOW,
    next_try,
    notify_refusal,
    shown_url,
    webhook_body,
)
from worker.settings import Settings, SettingsError, load_settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENDED = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=2, max_seconds=300, max_attempts=8)


def _request(**extra: Any) -> dict[str, Any]:
    return {"idempotency_key": "k", "legs": [
        {"provider": "bambora", "merchant": "T1", "payment_reference": "r1"}], **extra}


def _sender(seen: list[httpx.Request], secret: str | None = SECRET) -> OutcomeSender:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return OutcomeSender(client, create_celery(Settings()), secret)


def test_the_webhook_is_signed_as_standard_webhooks_verifies() -> None:
    """Given a job's event, when it is posted, the receiver's Webhook(secret).verify accepts it."""
    seen: list[httpx.Request] = []
    when = datetime.now(UTC).replace(microsecond=0)
    body = webhook_body({"id": "j1", "state": "reconciled"}, when)
    status = _sender(seen).post_webhook("https://p.test/hook", "j1:reconciled", when, body)
    assert status == 204
    request = seen[0]
    event = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert event == {"type": "job.finished", "timestamp": when.isoformat().replace("+00:00", "Z"),
                     "data": {"id": "j1", "state": "reconciled"}}
    assert request.headers["webhook-id"] == "j1:reconciled"
    assert request.headers["webhook-timestamp"] == str(int(when.timestamp()))
    assert request.headers["webhook-signature"].startswith("v1,")
    assert SECRET not in json.dumps(dict(request.headers))


def test_a_tampered_body_fails_verification() -> None:
    """A body changed after signing is refused by the receiver's verification."""
    seen: list[httpx.Request] = []
    when = datetime.now(UTC).replace(microsecond=0)
    _sender(seen).post_webhook("https://p.test/hook", "j1:failed", when,
                               webhook_body({"id": "j1"}, when))
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(seen[0].content.replace(b"j1", b"j2"), dict(seen[0].headers))


def test_the_retry_delay_is_the_backoff_with_full_jitter() -> None:
    """After n failed tries the next comes within [0, min(cap, base * 2**(n-1))] seconds."""
    now = ENDED + timedelta(minutes=1)
    assert next_try(1, ENDED, now, POLICY, lambda: 1.0) == now + timedelta(seconds=2)
    assert next_try(4, ENDED, now, POLICY, lambda: 0.5) == now + timedelta(seconds=8)
    assert next_try(20, ENDED, now, POLICY, lambda: 1.0) == now + timedelta(seconds=300)
    assert next_try(20, ENDED, now, POLICY, lambda: 0.0) == now


def test_retries_stop_24_hours_after_the_job_ended() -> None:
    """The last try is due at most 24 h after the job ended; after that there is none."""
    almost = ENDED + DELIVERY_WINDOW - timedelta(seconds=10)
    assert next_try(30, ENDED, almost, POLICY, lambda: 1.0) == ENDED + DELIVERY_WINDOW
    assert next_try(30, ENDED, ENDED + DELIVERY_WINDOW, POLICY, lambda: 1.0) is None


def test_notify_url_without_a_secret_is_refused_with_the_reason() -> None:
    """A request with notify_url while no secret is configured gets a notify_url error."""
    request = CancellationRequest.model_validate(_request(notify_url="https://p.test/hook"))
    errors = notify_refusal(request, notify_configured=False)
    assert [e["field"] for e in errors] == ["notify_url"]
    assert "CANCELFLOW_NOTIFY_SECRET" in errors[0]["error"]
    assert notify_refusal(request, notify_configured=True) == []
    assert notify_refusal(CancellationRequest.model_validate(_request()), False) == []


@pytest.mark.parametrize("url", ["ftp://p.test/x", "p.test/hook", "http://", "javascript:x", ""])
def test_notify_url_must_be_http_or_https(url: str) -> None:
    """A notify_url that is not an http(s) URL with a host is a validation error."""
    with pytest.raises(ValidationError, match="notify_url"):
        CancellationRequest.model_validate(_request(notify_url=url))


@pytest.mark.parametrize("reply_to", [
    {"task": "t"}, {"queue": "q"}, {"task": "", "queue": "q"}, {"task": "t", "queue": 1},
    {"task": "t", "queue": "q", "routing_key": "x"}, "t@q",
])
def test_reply_to_needs_exactly_task_and_queue(reply_to: Any) -> None:
    """reply_to is strictly {"task": NAME, "queue": QUEUE}."""
    with pytest.raises(ValidationError, match="reply_to"):
        CancellationRequest.model_validate(_request(reply_to=reply_to))


def test_a_valid_request_keeps_its_outcome_fields() -> None:
    """notify_url and reply_to are stored with the request as given."""
    request = CancellationRequest.model_validate(_request(
        notify_url="http://p.test:8080/hook?x=1", reply_to={"task": "t.done", "queue": "replies"}))
    stored = request.model_dump(mode="json", exclude={"legs"})
    assert stored["notify_url"] == "http://p.test:8080/hook?x=1"
    assert stored["reply_to"] == {"task": "t.done", "queue": "replies"}


def test_logs_show_a_url_without_credentials_or_query() -> None:
    """A URL in a log line loses its user:password@, query and fragment."""
    assert shown_url("https://u:pw@p.test/h?token=s#f") == "https://p.test/h"


@pytest.mark.parametrize("value", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!!", "whsec_YWJj"])
def test_a_malformed_notify_secret_stops_the_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """A secret without whsec_, not base64, or too short stops the process with one line."""
    monkeypatch.setenv("CANCELFLOW_NOTIFY_SECRET", value)
    load_settings.cache_clear()
    try:
        with pytest.raises(SettingsError):
            load_settings()
    finally:
        load_settings.cache_clear()
    line = capsys.readouterr().err.strip()
    assert "CANCELFLOW_NOTIFY_SECRET" in line and "\n" not in line and value not in line


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_notify_secret_is_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An empty or blank CANCELFLOW_NOTIFY_SECRET is no secret at all."""
    monkeypatch.setenv("CANCELFLOW_NOTIFY_SECRET", value)
    assert Settings().notify_secret is None
