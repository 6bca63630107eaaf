"""The OpenAPI document is generated from the routes and the answer models, and the answers the
receiver streams by hand (the jobs list, the audit export) are the models' shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from tests.support import seed_called_job, seed_six_states
from webhooks import create_app
from webhooks.apidoc import REF_TEMPLATE, openapi_document
from worker.domain.states import JobState
from worker.services.views import JobDetail, JobList
from worker.services.views.models import AttemptExport
from worker.settings import Settings

TOKEN = "generated-openapi-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

# Routes for people, not clients: the sign-in pages, the job pages and their forms.
UNDOCUMENTED = {"/login", "/logout", "/jobs/<job_id>", "/jobs/<job_id>/legs/<leg_id>/retry",
                "/jobs/<job_id>/legs/<leg_id>/resolve", "/jobs/<job_id>/abandon",
                "/static/<path:filename>"}


def _app(tmp_path: Path) -> Flask:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",  # type: ignore[arg-type]
                        api_token=TOKEN, paywall_hash_keys="cb-key")
    return create_app(settings, dispatcher=object())


def test_every_client_route_is_in_the_document_and_nothing_else(tmp_path: Path) -> None:
    """Given the app's URL map, every route but the people's pages is documented, and every
    documented path and method is a route of the app."""
    app = _app(tmp_path)
    served = {(rule.rule, method.lower()) for rule in app.url_map.iter_rules()
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(path.replace("{", "<").replace("}", ">"), method)
                  for path, operations in openapi_document()["paths"].items()
                  for method in operations}
    assert documented == {(rule, method) for rule, method in served
                          if rule not in UNDOCUMENTED}


def test_the_schemas_are_the_models() -> None:
    """The Job answer's schema is exactly what pydantic generates from the model."""
    schemas = openapi_document()["components"]["schemas"]
    generated = JobDetail.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
    generated.pop("$defs")
    assert schemas["JobDetail"] == generated
    assert schemas["JobDetail"]["additionalProperties"] is False
    assert {"events", "notifications"} <= set(schemas["JobDetail"]["required"])
    assert "events" not in schemas["Job"]["properties"]  # a list leaves them out


def test_secured_routes_say_so_and_public_ones_do_not() -> None:
    """Routes behind the bearer token carry its requirement and its 401/503 answers."""
    paths = openapi_document()["paths"]
    assert paths["/api/v1/jobs"]["get"]["security"] == [{"bearer": []}]
    assert {"401", "503"} <= set(paths["/api/v1/legs/{leg_id}/retry"]["post"]["responses"])
    for public in ("/healthz", "/api/v1/openapi.json", "/callbacks/paywall"):
        assert all("security" not in op for op in paths[public].values()), public


def test_streamed_answers_are_the_models_shapes(tmp_path: Path) -> None:
    """The jobs list and the audit export, streamed by hand, parse as JobList and
    AttemptExport (which forbid any key they do not name)."""
    app = _app(tmp_path)
    engine = app.extensions["cancelflow"]["engine"]
    seeded = seed_six_states(engine)
    job_id = seed_called_job(engine, "exported", legs=2, calls=2, at=AT,
                             state=JobState.RECONCILED)
    client = app.test_client()
    listed = JobList.model_validate_json(client.get("/api/v1/jobs?limit=500",
                                                    headers=AUTH).get_data())
    assert job_id in {job.id for job in listed.jobs} and len(listed.jobs) == len(seeded) + 1
    export = AttemptExport.model_validate_json(
        client.get(f"/api/v1/jobs/{job_id}/attempts", headers=AUTH).get_data())
    assert export.job_id == job_id and len(export.attempts) == 4 and export.note is None
