"""The Bambora adapter over httpx.MockTransport: token, headers, encoding, errors, minor units."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import unquote

import httpx
import pytest

from tests.fakes.providers import bambora_api as make_api
from tests.fakes.providers import bambora_token as token
from worker.providers import errors
from worker.providers.bambora.adapter import from_minor
from worker.providers.calls import NullObserver

PAYMENT = {"reference": "r", "merchant": "T1", "state": "Canceled", "amount": 12550,
           "currency": "SEK"}


def test_cancel_sends_bearer_and_api_version_and_converts_minor_units() -> None:
    """Cancel posts to .../cancel/ with the token and API-Version: 1; 12550 SEK is 125.50."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request)
        seen.append(request)
        return httpx.Response(201, json=PAYMENT)

    payment = make_api(handler).cancel_payment("T1", "r", NullObserver())
    assert seen[0].url.raw_path == b"/v1/merchants/T1/payments/r/cancel/"
    assert (seen[0].headers["Authorization"], seen[0].headers["API-Version"]) == (
        "Bearer jwt-1", "1")
    assert payment.amount == Decimal("125.50") and payment.state == "Canceled"


def test_a_long_reference_with_reserved_characters_is_one_segment() -> None:
    """A 2,000-character reference with / ? # % travels as one percent-encoded segment."""
    reference = ("a/b?c#d%e f&g=h+ü" * 200)[:2000]
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request)
        paths.append(request.url.raw_path)
        return httpx.Response(200, json={**PAYMENT, "reference": reference})

    make_api(handler).get_payment("T1", reference, NullObserver())
    segment = paths[0].split(b"/payments/", 1)[1].rstrip(b"/")
    assert b"/" not in segment and b"?" not in segment and b"#" not in segment
    assert unquote(segment.decode()) == reference


def test_expired_token_is_refreshed_once() -> None:
    """A 401 fetches a new token and repeats the call once."""
    tokens = iter(["old", "new"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request, next(tokens))
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json={"type": "https://api.bambora.com/problems/unauthorized"})
        return httpx.Response(200, json=PAYMENT)

    assert make_api(handler).get_payment("T1", "r", NullObserver()).state == "Canceled"


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (402, "payments/cannot_cancel", errors.NotCancellable),
        (422, "payments/invalid_payment_state_transition", errors.NotCancellable),
        (404, "payments/payment_not_found", errors.NotFound),
        (409, "payments/payment_operation_blocked", errors.Conflict),
        (429, "rate_limited", errors.RateLimited),
        (503, "unavailable", errors.ProviderUnavailable),
        (400, "bad_request", errors.InvalidRequest),
    ],
)
def test_problems_map_by_type(status: int, kind: str, error: type[Exception]) -> None:
    """Error bodies map by their type (and status) to the error tree."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request)
        return httpx.Response(status, json={
            "type": f"https://api.bambora.com/problems/{kind}", "title": "t", "detail": "d",
            "status": status})

    with pytest.raises(error):
        make_api(handler).cancel_payment("T1", "r", NullObserver())


def test_bad_client_credentials_are_auth_failed() -> None:
    """The token service refusing the client is AuthFailed, not a retry."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    with pytest.raises(errors.AuthFailed):
        make_api(handler).get_payment("T1", "r", NullObserver())


def test_minor_units_follow_the_currency_exponent() -> None:
    """JPY has no minor unit, KWD has three."""
    assert from_minor(500, "JPY") == Decimal("500")
    assert from_minor(1234, "KWD") == Decimal("1.234")


@pytest.mark.parametrize("reference", [".", ".."])
def test_dot_references_survive_url_resolution(reference: str) -> None:
    """A reference of dots is encoded, so it is not resolved away as a path step."""
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request)
        paths.append(request.url.raw_path)
        return httpx.Response(200, json=PAYMENT)

    make_api(handler).get_payment("T1", reference, NullObserver())
    assert paths == [b"/v1/merchants/T1/payments/" + b"%2E" * len(reference) + b"/"]
