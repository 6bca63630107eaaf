"""The status API over Flask's test client and a real SQLite ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.fakes import FakeDispatcher
from webhooks import create_app
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.services.context import Context, RetryPolicy
from worker.services.submit import submit
from worker.settings import Settings

TOKEN = "s3cret-token-0123456789abcdef-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(tmp_path: Path, **settings: object) -> FlaskClient:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                              **settings))  # type: ignore[arg-type]
    return app.test_client()


def seed_jobs(engine: Engine, count: int) -> list[str]:
    start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    ids = []
    for i in range(count):
        ctx = Context(SqlUnitOfWorkFactory(engine), {}, FakeDispatcher(), RetryPolicy(1, 1, 1), 60,
                      clock=lambda i=i: start + timedelta(seconds=i))
        body = {"idempotency_key": f"job-{i}",
                "legs": [{"provider": "bambora", "merchant": "T1", "payment_reference": str(i)}]}
        ids.append(submit(ctx, (), {"request": body}).job_id)
    return ids


def test_api_answers_503_until_a_token_is_configured(tmp_path: Path) -> None:
    """Without CANCELFLOW_API_TOKEN the API is closed: 503, whatever the header."""
    client = client_for(tmp_path)
    assert client.get("/api/v1/jobs", headers=AUTH).status_code == 503


def test_api_refuses_missing_or_wrong_tokens(tmp_path: Path) -> None:
    """401 without a bearer token or with a wrong one; the token never appears in answers."""
    client = client_for(tmp_path, api_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = client.get("/api/v1/jobs", headers=headers)
        assert answer.status_code == 401
        assert TOKEN not in answer.get_data(as_text=True)


def test_list_is_newest_first_and_paginates(tmp_path: Path) -> None:
    """Pages of `limit` jobs, newest first, chained by next_cursor, ending with null."""
    client = client_for(tmp_path, api_token=TOKEN)
    ids = seed_jobs(client.application.extensions["cancelflow"]["engine"], 5)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", query_string=params, headers=AUTH).get_json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "501"}, {"limit": "x"},
                                   {"state": "bogus"}, {"cursor": "!!"}])
def test_bad_list_parameters_are_400(tmp_path: Path, query: dict[str, str]) -> None:
    """Out-of-range limits, unknown states and foreign cursors are 400, not 500."""
    client = client_for(tmp_path, api_token=TOKEN)
    assert client.get("/api/v1/jobs", query_string=query, headers=AUTH).status_code == 400


def test_unknown_job_is_404_and_known_job_has_the_contract_shape(tmp_path: Path) -> None:
    """A job answers with the contract's fields; an unknown id is 404."""
    client = client_for(tmp_path, api_token=TOKEN)
    job_id = seed_jobs(client.application.extensions["cancelflow"]["engine"], 1)[0]
    assert client.get("/api/v1/jobs/nope", headers=AUTH).status_code == 404
    job = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).get_json()
    assert set(job) >= {"id", "idempotency_key", "state", "created_at", "updated_at", "errors",
                        "legs", "reconciliation"}
    assert set(job["legs"][0]) >= {"id", "provider", "target", "state", "reason",
                                   "already_cancelled", "attempts", "provider_reference",
                                   "reconciliation"}
    assert job["reconciliation"] == {"state": "pending", "differences": []}


def test_openapi_document_lists_the_routes(tmp_path: Path) -> None:
    """The OpenAPI document is public and names every API route."""
    doc = client_for(tmp_path).get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}", "/healthz", "/readyz"} <= set(doc["paths"])
