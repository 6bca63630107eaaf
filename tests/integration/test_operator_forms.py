"""The dashboard's operator forms (issue 17) over Flask's test client: CSRF, actions, events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.fakes import FakeDispatcher
from tests.support import job_answer, set_leg, submit_job
from webhooks import create_app
from worker.ledger.views import LedgerReads
from worker.settings import Settings

TOKEN = "forms-token-0123456789abcdef-0123"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                              api_token=TOKEN), dispatcher=FakeDispatcher())  # type: ignore[arg-type]
    yield app
    app.extensions["cancelflow"]["engine"].dispose()


def _failed_leg(app: Flask) -> tuple[str, str]:
    with app.app_context():
        engine = app.extensions["cancelflow"]["engine"]
        job_id = submit_job(engine, {"idempotency_key": "forms-1", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "r1"},
            {"provider": "bambora", "merchant": "T1", "payment_reference": "r2"}]}, NOW)
        job = job_answer(LedgerReads(engine), job_id)
        assert job is not None
        leg_id = job["legs"][0]["id"]
        set_leg(engine, leg_id, state="failed", reason="retries_exhausted", attempts=8)
    return job_id, leg_id


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert client.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 303
    return client


def _csrf(client: FlaskClient, job_id: str) -> str:
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "the job page has no operator form"
    return found.group(1)


def test_resolve_form_ends_the_leg_and_shows_the_event(app: Flask) -> None:
    """A signed-in person resolves a failed leg by the form; the job page lists the event."""
    job_id, leg_id = _failed_leg(app)
    client = _signed_in(app)
    answer = client.post(f"/jobs/{job_id}/legs/{leg_id}/resolve", data={
        "csrf_token": _csrf(client, job_id), "outcome": "cancelled",
        "note": "done in the portal"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("#events")
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    events = page[page.index('id="event-list"'):]
    assert "leg_resolved" in events and "done in the portal" in events and "dashboard" in events
    assert "resolved_by_operator" in page


def test_forms_without_the_right_csrf_token_are_refused(app: Flask) -> None:
    """No token, another token, or a bearer header without a token: 403, nothing changes."""
    job_id, leg_id = _failed_leg(app)
    client = _signed_in(app)
    _csrf(client, job_id)
    path = f"/jobs/{job_id}/legs/{leg_id}/retry"
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    bearer = app.test_client().post(path, data={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 403
    abandon = client.post(f"/jobs/{job_id}/abandon", data={"note": "x"})
    assert abandon.status_code == 403
    assert "No events" in client.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_retry_and_abandon_forms(app: Flask) -> None:
    """Retry by the form reopens the leg; abandon ends the unsent one; a refusal is a 409 page."""
    job_id, leg_id = _failed_leg(app)
    client = _signed_in(app)
    token = _csrf(client, job_id)
    assert client.post(f"/jobs/{job_id}/legs/{leg_id}/retry",
                       data={"csrf_token": token}).status_code == 303
    assert client.post(f"/jobs/{job_id}/abandon",
                       data={"csrf_token": token, "note": "called off"}).status_code == 303
    again = client.post(f"/jobs/{job_id}/legs/{leg_id}/retry", data={"csrf_token": token})
    assert again.status_code == 409 and "can be retried" in again.get_data(as_text=True)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "leg_retried" in page and "job_abandoned" in page and "called off" in page
    assert client.post(f"/jobs/{job_id}/abandon",
                       data={"csrf_token": token, "note": " "}).status_code == 400
