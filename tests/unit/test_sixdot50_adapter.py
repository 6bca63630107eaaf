"""The 6DOT50 adapter over httpx.MockTransport: token, cancel, read, error mapping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest

from tests.fakes.providers import SIXDOT50_BASE
from tests.fakes.providers import sixdot50_api as make_api
from tests.fakes.providers import sixdot50_token as token_response
from worker.providers import errors
from worker.providers.calls import CallRecord, NullObserver

BATCH_ID = uuid.UUID("f945d71c-b00f-4e77-8175-253093157a2f")
BASE = SIXDOT50_BASE


def batch_body(status: str = "CANCELLED", cancelled: int = 185) -> dict[str, object]:
    return {
        "id": str(BATCH_ID),
        "name": "b",
        "statusCode": status,
        "externalId": None,
        "createdAt": "2026-11-21T08:00:00Z",
        "summary": {
            "paymentsAmount": 18500.00,
            "paymentsCount": 185,
            "referralsAmount": 0,
            "settledAmount": 0,
            "settledCount": 0,
            "cancelledAmount": 18500.00 if cancelled else 0,
            "cancelledCount": cancelled,
        },
    }


def test_cancel_batch_sends_bearer_token_and_parses_decimals() -> None:
    """Given a DRAFT batch, cancel answers it CANCELLED with exact Decimal totals."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/authentication/getToken"):
            return token_response(request)
        seen.append(request.headers["Authorization"])
        assert request.url.path == f"/api/batches/{BATCH_ID}/cancel"
        return httpx.Response(200, json=batch_body())

    batch = make_api(handler).cancel_batch(BATCH_ID, NullObserver())
    assert seen == ["Bearer tok-1"]
    assert batch.status == "CANCELLED"
    assert batch.summary.cancelled_amount == Decimal("18500.00")
    assert isinstance(batch.summary.cancelled_amount, Decimal)


def test_token_is_cached_between_calls() -> None:
    """The 15-minute token is fetched once for several calls."""
    token_calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        if request.url.path.endswith("/getToken"):
            token_calls += 1
            return token_response(request)
        return httpx.Response(200, json=batch_body())

    api = make_api(handler)
    api.get_batch(BATCH_ID, NullObserver())
    api.get_batch(BATCH_ID, NullObserver())
    assert token_calls == 1


def test_expired_token_is_refreshed_once_on_401() -> None:
    """A 401 fetches a new token and repeats the call once."""
    tokens = iter(["old", "new"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request, next(tokens))
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json={"message": "token expired"})
        return httpx.Response(200, json=batch_body())

    assert make_api(handler).get_batch(BATCH_ID, NullObserver()).status == "CANCELLED"


def test_second_401_is_auth_failed() -> None:
    """A 401 after the refresh is a permanent AuthFailed, not a loop."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        return httpx.Response(401, json={"message": "no"})

    with pytest.raises(errors.AuthFailed):
        make_api(handler).get_batch(BATCH_ID, NullObserver())


def test_refused_credentials_are_auth_failed() -> None:
    """getToken answering success=false is AuthFailed."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": False})

    with pytest.raises(errors.AuthFailed):
        make_api(handler).get_batch(BATCH_ID, NullObserver())


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.InvalidRequest),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (429, errors.RateLimited),
        (500, errors.ProviderUnavailable),
        (503, errors.ProviderUnavailable),
    ],
)
def test_statuses_map_to_the_error_tree(status: int, error: type[Exception]) -> None:
    """Each documented status maps to one class of the error tree."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        return httpx.Response(status, json={"message": "x"}, headers={"Retry-After": "3"})

    with pytest.raises(error) as caught:
        make_api(handler).cancel_batch(BATCH_ID, NullObserver())
    if isinstance(caught.value, errors.RateLimited):
        assert caught.value.retry_after == 3


def test_garbage_answer_to_cancel_is_ambiguous() -> None:
    """A 200 with a body that is not JSON may hide a cancel that happened: ambiguous."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        return httpx.Response(200, content=b'{"statusCode": "CANC')

    with pytest.raises(errors.MalformedResponse) as caught:
        make_api(handler).cancel_batch(BATCH_ID, NullObserver())
    assert caught.value.ambiguous


def test_timeout_after_send_is_ambiguous_but_connect_error_is_not() -> None:
    """A read timeout on cancel is ambiguous; a refused connection never sent anything."""
    failure: Exception = httpx.ReadTimeout("slow")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        raise failure

    api = make_api(handler)
    with pytest.raises(errors.TransportError) as caught:
        api.cancel_batch(BATCH_ID, NullObserver())
    assert caught.value.ambiguous
    failure = httpx.ConnectError("refused")
    with pytest.raises(errors.TransportError) as caught:
        api.cancel_batch(BATCH_ID, NullObserver())
    assert not caught.value.ambiguous


def test_calls_are_reported_without_secrets() -> None:
    """Every call is reported with operation, status and outcome, and no secret anywhere."""
    records: list[CallRecord] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        return httpx.Response(503, json={"message": "down"})

    with pytest.raises(errors.ProviderUnavailable):
        make_api(handler, records).cancel_batch(BATCH_ID, NullObserver())
    assert [(r.operation, r.http_status, r.outcome) for r in records] == [
        ("get_token", 200, "ok"),
        ("cancel_batch", 503, "ProviderUnavailable"),
    ]
    assert "tok-1" not in repr(records) and "'s'" not in repr(records)
