"""A leg's ``reconciliation`` has the contract's shape in every surface, old ledger rows too.

The contract puts ``expected``, ``reported`` and ``source`` at the top of the leg's
reconciliation object, beside ``currency`` and the leg's ``differences``. Ledgers written
before that change hold them nested under ``evidence``: those rows are read in the new shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from typer.testing import CliRunner

from devstack.filled_ledger import fill_job
from tests.support import text_of
from webhooks import create_app
from webhooks.apidoc import openapi_document
from worker.cli import app as cli
from worker.domain.reconciliation import LEG_RECONCILIATION_KEYS
from worker.ledger import create_ledger_engine
from worker.ledger.tables import legs
from worker.ledger.uow import SqlUnitOfWork
from worker.services.jobs import refresh_job
from worker.settings import Settings, load_settings

TOKEN = "reconciliation-shape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = set(LEG_RECONCILIATION_KEYS)


def old_shape(recon: dict[str, Any]) -> dict[str, Any]:
    """A leg reconciliation as releases before issue 12 stored it."""
    evidence = {key: value for key, value in recon.items() if key != "differences"}
    return {"evidence": evidence, "differences": recon["differences"]}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Path, str]]:
    """A job of three cancelled legs, the second stored in the old nested shape and the job's
    own reconciliation recomputed from it; the app, the ledger file and the job id."""
    path = tmp_path_factory.mktemp("shape") / "ledger.db"
    app = create_app(Settings(database_url=f"sqlite:///{path}",  # type: ignore[arg-type]
                              api_token=TOKEN))
    engine = create_ledger_engine(f"sqlite:///{path}")
    job_id = fill_job(engine, "shape", 3)
    with SqlUnitOfWork(engine) as uow:
        leg_id, recon = uow.conn.execute(
            select(legs.c.id, legs.c.reconciliation).where(legs.c.position == 1)).one()
        assert set(recon) == KEYS  # written in the contract's shape
        uow.conn.execute(update(legs).where(legs.c.id == leg_id)
                         .values(reconciliation=old_shape(recon)))
        job = uow.jobs.get(job_id)
        assert job is not None
        uow.jobs.set_state(job_id, job.state, None, job.updated_at)
        refresh_job(uow, job_id, job.updated_at)
        uow.commit()
    engine.dispose()
    yield app, path, job_id
    app.extensions["cancelflow"]["engine"].dispose()


def assert_contract_shape(legs_shown: list[dict[str, Any]]) -> None:
    assert len(legs_shown) == 3
    for leg in legs_shown:
        assert set(leg["reconciliation"]) == KEYS
        assert leg["reconciliation"]["expected"] == {"count": 1, "amount": "25.00"}
        assert leg["reconciliation"]["source"] == "bambora_payment"


def test_the_api_shows_the_contract_shape_in_the_job_the_list_and_the_pages(
        seeded: tuple[Flask, Path, str]) -> None:
    """GET the job, the list and the job's legs: each leg's reconciliation has exactly the
    contract's keys, the old row's included, and the job reconciled from all three."""
    app, _path, job_id = seeded
    client = app.test_client()
    job = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).get_json()
    assert job["reconciliation"] == {"state": "matched", "differences": []}
    assert job["state"] == "reconciled"
    assert_contract_shape(job["legs"])
    listed = client.get("/api/v1/jobs", headers=AUTH).get_json()["jobs"]
    assert_contract_shape(next(j for j in listed if j["id"] == job_id)["legs"])
    assert_contract_shape(client.get(f"/api/v1/jobs/{job_id}/legs", headers=AUTH)
                          .get_json()["legs"])


def test_the_cli_json_shows_the_contract_shape(seeded: tuple[Flask, Path, str]) -> None:
    """`status --json` and `report --json` carry the same keys."""
    _app, path, job_id = seeded
    env = {"CANCELFLOW_DATABASE_URL": f"sqlite:///{path}"}
    load_settings.cache_clear()
    try:
        status = CliRunner().invoke(cli, ["status", job_id, "--json"], env=env)
        report = CliRunner().invoke(cli, ["report", "--json"], env=env)
    finally:
        load_settings.cache_clear()
    assert status.exit_code == 0 and report.exit_code == 0
    assert_contract_shape(json.loads(status.stdout)["legs"])
    assert_contract_shape(json.loads(report.stdout)["jobs"][0]["legs"])


def test_the_dashboard_shows_the_figures_of_every_leg(seeded: tuple[Flask, Path, str]) -> None:
    """The job page shows each leg's expected and cancelled figures, the old row's too."""
    app, _path, job_id = seeded
    page = text_of(app.test_client().get(f"/jobs/{job_id}", headers=AUTH))
    assert page.count("1 / 25.00 EUR bambora_payment") == 3  # expected, with its source
    assert "no figures yet" not in page


def test_the_openapi_document_holds_the_leg_reconciliation_to_the_contract_keys() -> None:
    """The schema requires exactly the contract's keys and allows no others (schemathesis
    checks every answer against it)."""
    schemas = openapi_document()["components"]["schemas"]
    shape = schemas["LegReconciliation"]
    assert set(shape["required"]) == set(shape["properties"]) == KEYS
    assert shape["additionalProperties"] is False
    assert schemas["Leg"]["properties"]["reconciliation"] == {"anyOf": [
        {"$ref": "#/components/schemas/LegReconciliation"}, {"type": "null"}]}
