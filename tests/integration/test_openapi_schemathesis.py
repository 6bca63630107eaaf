"""schemathesis against the receiver's own OpenAPI document, over WSGI, on a seeded ledger.

Every operation gets generated requests (positive and negative, 50 examples each, derandomized
so that a run is repeatable) checked for: no server error, a declared status code, and a body
that conforms to the declared schema. Hand-picked inputs the generator practically never
reaches (forged cursors, NUL bytes) follow, through the same checks.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from devstack.postgres import TemporaryPostgres
from tests.support import jobs_answer, seed_six_states
from webhooks import create_app
from webhooks.apidoc import openapi_document
from worker.ledger.views import LedgerReads
from worker.services.views import list_jobs
from worker.settings import Settings

TOKEN = "schemathesis-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


class NoDispatch:
    """A dispatcher that must never be reached: no generated callback carries a valid hash."""

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        raise AssertionError("a generated callback was stored")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        redis_server: str) -> Iterator[Flask]:
    """The receiver, token and hash keys set, Redis up, on a ledger with a job in each state."""
    if request.param == "sqlite":
        ledger_url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'ledger.db'}"
    else:
        postgres: TemporaryPostgres | None = request.getfixturevalue("postgres")
        if postgres is None:
            pytest.skip("no PostgreSQL server on this machine")
        # An empty database of its own: create_app migrates it, as the receiver would.
        ledger_url = postgres.create_database(f"openapi_{uuid.uuid4().hex}")
    settings = Settings(database_url=ledger_url, redis_url=redis_server,  # type: ignore[arg-type]
                        api_token=TOKEN, paywall_hash_keys="cb-key")
    app = create_app(settings, dispatcher=NoDispatch())
    engine: Engine = app.extensions["cancelflow"]["engine"]
    seed_six_states(engine)
    yield app
    engine.dispose()


# The document as the app serves it (checked below). Loaded from the dict rather than with
# `schemathesis.pytest.from_fixture`: schemathesis 4.32's fixture-backed schemas fail on
# pytest 9.2 (they read `Function._nodeid`, which pytest no longer has).
schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_app_serves_the_document_under_test(app: Flask) -> None:
    """The document fuzzed here is the one GET /api/v1/openapi.json answers."""
    assert app.test_client().get("/api/v1/openapi.json").get_json() == openapi_document()


@schema.parametrize()
@settings(max_examples=50, derandomize=True, deadline=None, database=None)
def test_api_conforms_to_its_openapi_document(app: Flask, case: schemathesis.Case) -> None:
    """No generated request gets a server error, an undeclared status or an off-schema body."""
    case.call_and_validate(app=app, headers=AUTH, checks=CHECKS)


def test_every_seeded_job_answers_within_the_schema(app: Flask) -> None:
    """Each seeded job (every state, with evidence and differences) conforms, alone and listed."""
    engine: Engine = app.extensions["cancelflow"]["engine"]
    jobs = jobs_answer(list_jobs(LedgerReads(engine), state=None, limit=500, cursor=None))
    assert {job["state"] for job in jobs} >= {"accepted", "awaiting_callbacks", "reconciled",
                                              "mismatch", "failed", "invalid"}
    one = schema["/api/v1/jobs/{job_id}"]["GET"]
    for job in jobs:
        case = one.Case(path_parameters={"job_id": job["id"]})
        assert case.call_and_validate(app=app, headers=AUTH, checks=CHECKS).status_code == 200
    listed = schema["/api/v1/jobs"]["GET"]
    for state in {job["state"] for job in jobs}:
        case = listed.Case(query={"state": state, "limit": 1})
        assert case.call_and_validate(app=app, headers=AUTH, checks=CHECKS).status_code == 200


def cursor(*parts: Any) -> str:
    """A cursor in the API's encoding, holding whatever a forger chose."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("/api/v1/jobs/{job_id}", {"path_parameters": {"job_id": "a\x00b"}}, 404),
    ("/api/v1/jobs", {"query": {"cursor": cursor("2026-01-01T00:00:00", "x")}}, 400),
    ("/api/v1/jobs", {"query": {"cursor": cursor("2026-01-01T00:00:00+00:00", "\x00")}}, 400),
    ("/api/v1/jobs", {"query": {"cursor": cursor("9999-12-31T23:59:59-14:00", "x")}}, 400),
    ("/api/v1/jobs", {"query": {"cursor": cursor("2026-01-01", {"a": 1})}}, 400),
    ("/api/v1/jobs", {"query": {"cursor": cursor(1, 2)}}, 400),
])
def test_forged_ids_and_cursors_are_client_errors(app: Flask, path: str, kwargs: dict[str, Any],
                                                  status: int) -> None:
    """NUL bytes and forged cursors (naive or overflowing times) answer 4xx, never 500."""
    case = schema[path]["GET"].Case(**kwargs)
    assert case.call_and_validate(app=app, headers=AUTH, checks=CHECKS).status_code == status


@pytest.mark.parametrize("raw", [
    b'{"BulkPaymentId": 1, "MerchantUniqueCode": "\\ud800", "Hash": "x"}',
    b'{"BulkPaymentId": 1, "MerchantUniqueCode": "a", "Hash": "\\ud800"}',
    b"[" * 100_000 + b"]" * 100_000,
])
def test_unreadable_callbacks_are_400(app: Flask, raw: bytes) -> None:
    """Bodies no callback parser can read answer 400, never 500."""
    answer = app.test_client().post("/callbacks/paywall", data=raw,
                                    content_type="application/json")
    assert answer.status_code == 400
