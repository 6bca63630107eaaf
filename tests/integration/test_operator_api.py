"""Operator actions over the API (issue 17): retry, resolve, abandon, events, conflicts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from tests.fakes import FakeDispatcher
from tests.support import set_leg, submit_job
from webhooks import create_app
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.services.jobs import refresh_job
from worker.settings import Settings

TOKEN = "operator-token-0123456789abcdef-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _request(key: str, legs: int = 2, reason: str = "customer request") -> dict[str, Any]:
    return {"idempotency_key": key, "reason": reason,
            "legs": [{"provider": "bambora", "merchant": "T1", "payment_reference": f"r{i}"}
                     for i in range(legs)]}


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
def app(ledger_url: str, dispatcher: FakeDispatcher) -> Iterator[Flask]:
    app = create_app(Settings(database_url=ledger_url, api_token=TOKEN),  # type: ignore[arg-type]
                     dispatcher=dispatcher)
    yield app
    app.extensions["cancelflow"]["engine"].dispose()


def _engine(app: Flask) -> Engine:
    engine: Engine = app.extensions["cancelflow"]["engine"]
    return engine


def _submit(app: Flask, body: dict[str, Any]) -> str:
    return submit_job(_engine(app), body, NOW)


def _set_leg(app: Flask, leg_id: str, **values: Any) -> None:
    set_leg(_engine(app), leg_id, **values)


def _job(app: Flask, job_id: str) -> dict[str, Any]:
    answer = app.test_client().get(f"/api/v1/jobs/{job_id}", headers=AUTH)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.get_json()
    return found


def _failed_job(app: Flask) -> tuple[str, str, str]:
    """A job whose first leg failed after a call and whose second is still pending."""
    job_id = _submit(app, _request("ops-1"))
    first, second = (leg["id"] for leg in _job(app, job_id)["legs"])
    _set_leg(app, first, state="failed", reason="retries_exhausted", attempts=3)
    return job_id, first, second


def test_retry_of_a_failed_leg_reads_first_and_reopens_the_job(
        app: Flask, dispatcher: FakeDispatcher) -> None:
    """Given a failed leg, when retried, then 202, it runs again reading its target first."""
    job_id, leg_id, _ = _failed_job(app)
    answer = app.test_client().post(f"/api/v1/legs/{leg_id}/retry", json={"note": "provider ok"},
                                    headers=AUTH)
    assert answer.status_code == 202
    job = answer.get_json()
    assert job["id"] == job_id and job["state"] == "in_progress"
    leg = next(leg for leg in job["legs"] if leg["id"] == leg_id)
    assert (leg["state"], leg["reason"]) == ("retrying", None)
    with SqlUnitOfWorkFactory(_engine(app))(read_only=True) as uow:
        stored = uow.legs.get(leg_id)
    assert stored is not None and stored.needs_resolve
    assert dispatcher.legs == [(leg_id, 0)]
    [event] = job["events"]
    assert (event["type"], event["leg"], event["note"], event["actor"]) == (
        "leg_retried", leg_id, "provider ok", "api")
    assert event["details"]["was"] == {"state": "failed", "reason": "retries_exhausted"}


def test_retry_of_an_unconfigured_leg_needs_no_read(app: Flask) -> None:
    """Given a leg refused as provider_not_configured (never called), a retry just runs it."""
    job_id = _submit(app, _request("ops-2", legs=1))
    [leg] = _job(app, job_id)["legs"]
    _set_leg(app, leg["id"], state="rejected", reason="provider_not_configured")
    answer = app.test_client().post(f"/api/v1/legs/{leg['id']}/retry", headers=AUTH)
    assert answer.status_code == 202
    with SqlUnitOfWorkFactory(_engine(app))(read_only=True) as uow:
        stored = uow.legs.get(leg["id"])
    assert stored is not None and not stored.needs_resolve
    assert answer.get_json()["events"][0]["details"]["read_first"] is False


@pytest.mark.parametrize("state,reason", [("cancelled", None), ("rejected", "not_cancellable"),
                                          ("pending", None), ("in_flight", None)])
def test_retry_is_refused_when_the_leg_state_does_not_allow_it(
        app: Flask, dispatcher: FakeDispatcher, state: str, reason: str | None) -> None:
    """A cancelled, pending, in-flight or permanently rejected leg cannot be retried: 409."""
    job_id = _submit(app, _request("ops-3", legs=1))
    [leg] = _job(app, job_id)["legs"]
    _set_leg(app, leg["id"], state=state, reason=reason)
    answer = app.test_client().post(f"/api/v1/legs/{leg['id']}/retry", headers=AUTH)
    assert answer.status_code == 409
    assert "can be retried" in answer.get_json()["detail"]
    assert dispatcher.legs == [] and _job(app, job_id)["events"] == []


def test_unknown_ids_bad_bodies_and_missing_tokens(app: Flask) -> None:
    """404 for unknown ids, 400 for bad bodies, 401 without the token, on every action."""
    job_id, leg_id, _ = _failed_job(app)
    client = app.test_client()
    assert client.post("/api/v1/legs/nope/retry", headers=AUTH).status_code == 404
    assert client.post("/api/v1/legs/nope/resolve", headers=AUTH,
                       json={"outcome": "cancelled", "note": "x"}).status_code == 404
    assert client.post("/api/v1/jobs/nope/abandon", headers=AUTH,
                       json={"note": "x"}).status_code == 404
    for path, body in [(f"/api/v1/legs/{leg_id}/retry", {"note": 5}),
                       (f"/api/v1/legs/{leg_id}/retry", [1]),
                       (f"/api/v1/legs/{leg_id}/retry", {"nope": "x"}),
                       (f"/api/v1/legs/{leg_id}/resolve", {"outcome": "refunded", "note": "x"}),
                       (f"/api/v1/legs/{leg_id}/resolve", {"outcome": "cancelled"}),
                       (f"/api/v1/legs/{leg_id}/resolve", {"outcome": "cancelled", "note": " "}),
                       (f"/api/v1/jobs/{job_id}/abandon", {}),
                       (f"/api/v1/jobs/{job_id}/abandon", {"note": "x" * 2001})]:
        assert client.post(path, json=body, headers=AUTH).status_code == 400, (path, body)
    for path in (f"/api/v1/legs/{leg_id}/retry", f"/api/v1/legs/{leg_id}/resolve",
                 f"/api/v1/jobs/{job_id}/abandon"):
        assert client.post(path, json={"note": "x"}).status_code == 401
        assert client.post(path, json={"note": "x"},
                           headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert _job(app, job_id)["events"] == []


def test_two_retries_at_once_one_wins(app: Flask, dispatcher: FakeDispatcher) -> None:
    """Two operators retrying the same leg at once: one 202, the other 409; one dispatch."""
    _, leg_id, _ = _failed_job(app)
    start = threading.Barrier(2)
    codes: list[int] = []

    def click() -> None:
        client = app.test_client()
        start.wait(timeout=10)
        codes.append(client.post(f"/api/v1/legs/{leg_id}/retry", headers=AUTH).status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [202, 409]
    assert dispatcher.legs == [(leg_id, 0)]


def test_resolve_as_cancelled_ends_the_leg_without_figures(app: Flask) -> None:
    """A leg settled by hand ends cancelled/resolved_by_operator; reconciliation says no figures."""
    job_id = _submit(app, _request("ops-4", legs=1))
    [leg] = _job(app, job_id)["legs"]
    _set_leg(app, leg["id"], state="failed", reason="retries_exhausted", attempts=8)
    answer = app.test_client().post(
        f"/api/v1/legs/{leg['id']}/resolve", headers=AUTH,
        json={"outcome": "cancelled", "note": "cancelled in the Bambora portal, ticket 42"})
    assert answer.status_code == 200
    job = answer.get_json()
    [done] = job["legs"]
    assert (done["state"], done["reason"], done["detail"]) == (
        "cancelled", "resolved_by_operator", "cancelled in the Bambora portal, ticket 42")
    assert job["state"] == "mismatch"
    assert job["reconciliation"]["differences"] == [
        {"leg": leg["id"], "field": "figures", "expected": "provider figures",
         "reported": "none"}]
    assert [e["type"] for e in job["events"]] == ["leg_resolved"]
    assert job["events"][0]["details"]["outcome"] == "cancelled"
    again = app.test_client().post(f"/api/v1/legs/{leg['id']}/resolve", headers=AUTH,
                                   json={"outcome": "rejected", "note": "twice"})
    assert again.status_code == 409


def test_resolve_as_rejected_fails_the_job(app: Flask) -> None:
    """A leg resolved as rejected ends rejected/resolved_by_operator and the job failed."""
    job_id, first, second = _failed_job(app)
    client = app.test_client()
    for leg_id in (first, second):
        answer = client.post(f"/api/v1/legs/{leg_id}/resolve", headers=AUTH,
                             json={"outcome": "rejected", "note": "merchant withdrew"})
        assert answer.status_code == 200
    job = _job(app, job_id)
    assert job["state"] == "failed"
    assert {(leg["state"], leg["reason"]) for leg in job["legs"]} == {
        ("rejected", "resolved_by_operator")}
    assert len(job["events"]) == 2


def test_abandon_ends_only_unsent_legs(app: Flask) -> None:
    """Abandon ends pending never-called legs rejected/abandoned; a second abandon is 409."""
    job_id = _submit(app, _request("ops-5", legs=3))
    sent, retried, unsent = (leg["id"] for leg in _job(app, job_id)["legs"])
    _set_leg(app, sent, state="in_flight", attempts=1, lease_token="t")
    _set_leg(app, retried, state="pending", attempts=1)
    client = app.test_client()
    answer = client.post(f"/api/v1/jobs/{job_id}/abandon", headers=AUTH,
                         json={"note": "merchant called it off"})
    assert answer.status_code == 200
    job = answer.get_json()
    states = {leg["id"]: (leg["state"], leg["reason"]) for leg in job["legs"]}
    assert states == {sent: ("in_flight", None), retried: ("pending", None),
                      unsent: ("rejected", "abandoned")}
    assert [(e["type"], e["details"]) for e in job["events"]] == [
        ("job_abandoned", {"legs": 1})]
    again = client.post(f"/api/v1/jobs/{job_id}/abandon", headers=AUTH, json={"note": "again"})
    assert again.status_code == 409
    assert "no unsent leg" in again.get_json()["detail"]


def test_abandon_of_a_finished_job_is_refused(app: Flask) -> None:
    """A job in a final state has nothing to abandon: 409."""
    job_id, _, second = _failed_job(app)
    _set_leg(app, second, state="rejected", reason="not_found")
    with SqlUnitOfWorkFactory(_engine(app))() as uow:
        refresh_job(uow, job_id, NOW)
        uow.commit()
    answer = app.test_client().post(f"/api/v1/jobs/{job_id}/abandon", headers=AUTH,
                                    json={"note": "late"})
    assert answer.status_code == 409 and "failed" in answer.get_json()["detail"]


def test_a_reused_key_with_another_request_is_an_event(app: Flask) -> None:
    """A key reused with a different request changes nothing and adds idempotency_conflict;
    the same request again adds nothing."""
    job_id = _submit(app, _request("ops-6"))
    before = _job(app, job_id)
    assert _submit(app, _request("ops-6")) == job_id
    assert _job(app, job_id)["events"] == []
    assert _submit(app, _request("ops-6", legs=3, reason="other")) == job_id
    after = _job(app, job_id)
    assert after["legs"] == before["legs"]
    [event] = after["events"]
    assert event["type"] == "idempotency_conflict" and event["leg"] is None
    assert event["details"]["fields"] == ["legs", "reason"]
