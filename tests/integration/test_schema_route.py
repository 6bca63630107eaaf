"""The producer message's JSON Schema served by the receiver, public like the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from webhooks import create_app
from worker.domain.request_schema import COMMITTED_SCHEMA, SCHEMA_URL_PATH
from worker.settings import Settings


def test_the_schema_is_served_without_a_token_as_committed(tmp_path: Path) -> None:
    """GET /api/v1/schema/cancellation-request.json answers the committed docs/ schema, no token."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                              api_token="s3cret-token-0123456789abcdef-0123"))  # type: ignore[arg-type]
    answer = app.test_client().get(SCHEMA_URL_PATH)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.get_json() == json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8"))


def test_the_openapi_document_lists_the_schema_route(tmp_path: Path) -> None:
    """The OpenAPI document names the schema's path, so an API client can find it."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert SCHEMA_URL_PATH in doc["paths"]
