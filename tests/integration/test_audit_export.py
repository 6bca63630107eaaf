"""The audit export over the API (issue 17): ``GET /api/v1/jobs/{id}/attempts`` as JSON, CSV and
NDJSON, on SQLite and PostgreSQL, and what a pruned job's export says."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from tests.support import seed_called_job
from webhooks import create_app
from worker.domain.states import JobState
from worker.ledger.audit import SqlAuditLedger
from worker.services.audit import FIELDS, PRUNED_NOTE, open_export, prune
from worker.settings import Settings

TOKEN = "audit-token-0123456789abcdef-0123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def app(ledger_url: str) -> Iterator[Flask]:
    app = create_app(Settings(database_url=ledger_url, api_token=TOKEN))  # type: ignore[arg-type]
    yield app
    app.extensions["cancelflow"]["engine"].dispose()


def _engine(app: Flask) -> Engine:
    engine: Engine = app.extensions["cancelflow"]["engine"]
    return engine


@pytest.fixture
def job_id(app: Flask) -> str:
    """A reconciled job of 3 legs with 2 calls each."""
    return seed_called_job(_engine(app), "audited", legs=3, calls=2, at=AT,
                           state=JobState.RECONCILED)


def _get(app: Flask, job_id: str, **kwargs: Any) -> Any:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return app.test_client().get(f"/api/v1/jobs/{job_id}/attempts", headers=headers, **kwargs)


def test_json_export_lists_every_call_in_start_order(app: Flask, job_id: str) -> None:
    """JSON by default: every call of every leg, ordered by start time, without bodies."""
    answer = _get(app, job_id)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["job_id"] == job_id and body["note"] is None
    calls = body["attempts"]
    assert len(calls) == 6
    starts = [datetime.fromisoformat(c["started_at"]) for c in calls]
    assert starts == sorted(starts)
    assert set(calls[0]) == set(FIELDS)
    assert calls[0]["provider"] == "bambora" and calls[0]["operation"] == "cancel"
    assert calls[0]["http_status"] == 200 and calls[0]["duration_ms"] == 12.5
    assert calls[0]["provider_code"] == 'A,"1"' and calls[0]["request_id"] == "req-0"
    assert "SECRET-BODY" not in answer.get_data(as_text=True)


def test_csv_export_is_rfc4180_with_a_header_row(app: Flask, job_id: str) -> None:
    """?format=csv: a header row, then one quoted row per call; an attachment by its job."""
    answer = _get(app, job_id, query_string={"format": "csv"})
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="cancelflow-{job_id}-attempts.csv"')
    text = answer.get_data(as_text=True)
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(FIELDS)
    assert len(rows) == 7
    assert {row[FIELDS.index("provider_code")] for row in rows[1:]} == {'A,"1"'}
    assert "SECRET-BODY" not in text


def test_ndjson_export_by_accept_header_is_one_call_per_line(app: Flask, job_id: str) -> None:
    """Accept: application/x-ndjson: one JSON object per line, the same calls as JSON."""
    answer = _get(app, job_id, headers={"Accept": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.mimetype == "application/x-ndjson"
    assert answer.headers["Content-Disposition"].endswith('-attempts.ndjson"')
    lines = answer.get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == _get(app, job_id).get_json()["attempts"]


def test_accept_text_csv_chooses_csv(app: Flask, job_id: str) -> None:
    """Accept: text/csv without ?format answers CSV."""
    answer = _get(app, job_id, headers={"Accept": "text/csv"})
    assert answer.mimetype == "text/csv"


@pytest.mark.parametrize(("path", "query", "headers", "status"), [
    ("no-such-job", {}, AUTH, 404),
    (None, {"format": "xml"}, AUTH, 400),
    (None, {}, {}, 401),
    (None, {}, {"Authorization": "Bearer wrong"}, 401),
])
def test_export_refusals(app: Flask, job_id: str, path: str | None, query: dict[str, str],
                         headers: dict[str, str], status: int) -> None:
    """404 for an unknown job, 400 for an unknown format, 401 without the token."""
    answer = app.test_client().get(f"/api/v1/jobs/{path or job_id}/attempts",
                                   query_string=query, headers=headers)
    assert answer.status_code == status
    assert TOKEN not in answer.get_data(as_text=True)


def test_export_pages_through_more_calls_than_a_page(app: Flask) -> None:
    """With a page smaller than the job, the export still holds every call once, in order."""
    engine = _engine(app)
    job = seed_called_job(engine, "paged", legs=7, calls=3, at=AT, state=JobState.RECONCILED)
    export = open_export(SqlAuditLedger(engine), job, page_size=4)
    assert export is not None
    calls = list(export.calls())
    assert len(calls) == 21 and len({c.attempt_id for c in calls}) == 21
    keys = [(c.started_at, c.attempt_id) for c in calls]
    assert keys == sorted(keys)


def test_a_pruned_jobs_export_is_empty_with_a_note(app: Flask, job_id: str) -> None:
    """After prune the export has no calls and says why; the legs keep their counters."""
    prune(SqlAuditLedger(_engine(app)), older_than_days=1, now=AT + timedelta(days=2))
    body = _get(app, job_id).get_json()
    assert body["attempts"] == [] and body["note"] == PRUNED_NOTE
    csv_answer = _get(app, job_id, query_string={"format": "csv"})
    assert csv_answer.headers["X-Cancelflow-Note"] == PRUNED_NOTE
    assert list(csv.reader(io.StringIO(csv_answer.get_data(as_text=True)))) == [list(FIELDS)]
    job = app.test_client().get(f"/api/v1/jobs/{job_id}", headers=AUTH).get_json()
    assert [leg["attempts"] for leg in job["legs"]] == [2, 2, 2]
