"""Finding jobs (issue 17): GET /api/v1/jobs and `cancelflow report` filter by state, provider,
target, idempotency key and time, each with an index behind it, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from tests.fakes import FakeDispatcher
from tests.support import cancelflow, submit_job
from webhooks import create_app
from worker.ledger.views import LedgerReads
from worker.services.views import JobFilter, job_filter
from worker.settings import Settings

TOKEN = "find-Tok3n-4f9c2e-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
BATCH = "f945d71c-b00f-4e77-8175-253093157a2f"


@pytest.fixture
def app(ledger_url: str) -> Iterator[Flask]:
    app = create_app(Settings(database_url=ledger_url, api_token=TOKEN),  # type: ignore[arg-type]
                     dispatcher=FakeDispatcher())  # type: ignore[arg-type]
    yield app
    app.extensions["cancelflow"]["engine"].dispose()


@pytest.fixture
def seeded(app: Flask) -> dict[str, str]:
    """Three jobs an hour apart: a 6DOT50 batch, two Bambora payments, a Paywall bulk."""
    engine: Engine = app.extensions["cancelflow"]["engine"]
    return {
        "batch": submit_job(engine, {"idempotency_key": "order-1", "legs": [
            {"provider": "sixdot50", "batch_id": BATCH}]}, T0),
        "payments": submit_job(engine, {"idempotency_key": "order-2", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-1"},
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-2"}]},
            T0 + timedelta(hours=1)),
        "bulk": submit_job(engine, {"idempotency_key": "order-3", "legs": [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "code-77",
             "payment_date": "2026-11-21"}]}, T0 + timedelta(hours=2)),
    }


def listed(app: Flask, **params: str) -> list[str]:
    answer = app.test_client().get("/api/v1/jobs", headers=AUTH, query_string=params)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return [job["idempotency_key"] for job in body["jobs"]]


def test_each_filter_finds_its_jobs(app: Flask, seeded: dict[str, str]) -> None:
    """Provider, each kind of target, the key and the time range each keep the right jobs."""
    assert listed(app) == ["order-3", "order-2", "order-1"]
    assert listed(app, provider="bambora") == ["order-2"]
    assert listed(app, target=BATCH) == ["order-1"]
    assert listed(app, target="ref-2") == ["order-2"]
    assert listed(app, target="code-77") == ["order-3"]
    assert listed(app, target="ref-3") == []
    assert listed(app, idempotency_key="order-2") == ["order-2"]
    assert listed(app, since=(T0 + timedelta(hours=1)).isoformat()) == ["order-3", "order-2"]
    assert listed(app, until=(T0 + timedelta(hours=1)).isoformat()) == ["order-1"]
    assert listed(app, provider="paywall", target="ref-1") == []  # every filter must match
    assert listed(app, state="accepted", provider="sixdot50") == ["order-1"]


def test_filters_page_with_the_cursor(app: Flask, seeded: dict[str, str]) -> None:
    """A filtered list pages like the whole one: the cursor with the same filters."""
    first = app.test_client().get("/api/v1/jobs?limit=1&since=" + T0.isoformat().replace(
        "+00:00", "Z"), headers=AUTH).get_json()
    assert [j["idempotency_key"] for j in first["jobs"]] == ["order-3"]
    rest = listed(app, since=T0.isoformat(), cursor=first["next_cursor"])
    assert rest == ["order-2", "order-1"]


@pytest.mark.parametrize(("params", "says"), [
    ({"provider": "acme"}, "provider must be one of"),
    ({"since": "yesterday"}, "since must be an ISO-8601 time"),
    ({"until": "2026-11-21T09:00:00"}, "until must carry its UTC offset"),
    ({"since": "2026-11-22T00:00:00Z", "until": "2026-11-21T00:00:00Z"}, "since must be before"),
    ({"target": "x" * 201}, "target is at most 200 characters"),
])
def test_a_bad_filter_is_a_400_that_says_why(app: Flask, params: dict[str, str],
                                             says: str) -> None:
    """Filters that cannot mean anything are refused, naming the parameter."""
    answer = app.test_client().get("/api/v1/jobs", headers=AUTH, query_string=params)
    assert answer.status_code == 400
    assert says in answer.get_json()["detail"]


def test_the_report_takes_the_same_filters(app: Flask, seeded: dict[str, str],
                                           ledger_url: str) -> None:
    """`cancelflow report --provider/--target/--idempotency-key/--since` filters as the API."""
    def keys(*args: str) -> list[str]:
        result = cancelflow(ledger_url, "report", "--json", *args)
        assert result.exit_code == 0, result.stderr
        import json
        return [job["idempotency_key"] for job in json.loads(result.stdout)["jobs"]]

    assert keys("--provider", "bambora") == ["order-2"]
    assert keys("--target", "code-77") == ["order-3"]
    assert keys("--idempotency-key", "order-1") == ["order-1"]
    assert keys("--since", (T0 + timedelta(hours=2)).isoformat()) == ["order-3"]


def test_the_dashboard_search_box_finds_a_target_or_a_key(app: Flask,
                                                          seeded: dict[str, str]) -> None:
    """The dashboard's search takes a target, else an idempotency key; the provider select too."""
    client = app.test_client()

    def shown(**params: str) -> str:
        page = client.get("/", headers=AUTH, query_string=params)
        assert page.status_code == 200
        return page.get_data(as_text=True)

    assert "order-2" in shown(q="ref-1") and "order-1" not in shown(q="ref-1")
    assert "order-3" in shown(q="order-3") and "order-2" not in shown(q="order-3")
    assert "order-1" in shown(provider="sixdot50") and "order-2" not in shown(provider="sixdot50")
    assert "No jobs" in shown(q="nothing-like-it")


# The query plans: each filter is answered through an index, never a scan of every leg.

PLANS = {
    "target": (JobFilter(target="ref-1"), "ix_legs_target_key"),
    "provider": (JobFilter(provider=job_filter(provider="bambora").provider),
                 "ix_legs_provider_job"),
    "idempotency_key": (JobFilter(idempotency_key="order-2"), "idempotency_key"),
    "since": (JobFilter(since=T0), "ix_jobs_created"),
    "state": (job_filter(state="accepted"), "ix_jobs_state_created"),
}


def plan_of(engine: Engine, where: JobFilter) -> str:
    """The database's plan for the jobs list with ``where`` (the statement the read side runs)."""
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    from sqlalchemy import event
    event.listen(engine, "before_cursor_execute", keep)
    try:
        with LedgerReads(engine).snapshot() as views:
            views.list_jobs(where=where, limit=50, after=None)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    statement, parameters = next((s, p) for s, p in statements if "FROM jobs" in s)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # Three jobs are cheaper to scan than to look up: ask what the plan is when a scan is
        # not an option, i.e. whether an index can answer at all.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_filter_has_an_index_behind_it(app: Flask, seeded: dict[str, str],
                                             name: str) -> None:
    """EXPLAIN of each filtered list names the filter's index (SQLite and PostgreSQL)."""
    where, index = PLANS[name]
    plan = plan_of(app.extensions["cancelflow"]["engine"], where)
    assert index in plan, plan
    assert "SCAN legs" not in plan and "Seq Scan on legs" not in plan, plan
    if out := os.environ.get("CANCELFLOW_PLANS_OUT"):  # docs/query-plans.md is written from it
        with open(out, "a") as plans:
            dialect = app.extensions["cancelflow"]["engine"].dialect.name
            plans.write(f"### `{name}` on {dialect}\n\n```\n{plan}\n```\n\n")


def test_the_plans_are_written_down(app: Flask, seeded: dict[str, str]) -> None:
    """docs/query-plans.md shows every filter's plan (regenerate: see its first lines)."""
    engine: Engine = app.extensions["cancelflow"]["engine"]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "query-plans.md").read_text()
    for name, (_where, index) in PLANS.items():
        assert f"`{name}`" in doc and index in doc
