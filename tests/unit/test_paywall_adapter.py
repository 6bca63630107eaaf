"""The Paywall adapter over httpx.MockTransport: envelope, codes, headers, query paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from worker.providers import errors
from worker.providers.calls import NullObserver
from worker.providers.paywall import Accepted, Paywall, Refused
from worker.providers.paywall_codes import Meaning

DAY = date(2026, 11, 21)


def envelope(body: Any = None, code: int = 0, result: bool = True) -> dict[str, Any]:
    return {"ErrorCodeType": None, "ErrorMessage": None if code == 0 else "refused",
            "ErrorCode": code, "Result": result, "Message": None, "Body": body}


def make_api(handler: Callable[[httpx.Request], httpx.Response]) -> Paywall:
    return Paywall(
        httpx.Client(transport=httpx.MockTransport(handler)),
        public_url="https://pw.example/public",
        private_url="https://pw.example/private",
        public_headers=(SecretStr("pk"), SecretStr("pc")),
        private_headers=(SecretStr("sk"), SecretStr("sc")),
    )


def test_bulk_cancel_sends_date_code_and_public_headers() -> None:
    """The bulk cancel posts {Date, MerchantUniqueCode} with the public headers."""
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["headers"] = (request.headers["apikeypublic"], request.headers["apiclientpublic"])
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=envelope(
            {"Result": True, "BulkPaymentId": 81234, "TotalPaymentCount": 2500}))

    result = make_api(handler).cancel_bulk("bulk-1", DAY, NullObserver())
    assert result == Accepted("81234", 2500)
    assert seen == {"path": "/public/api/paywall/payment/bulk/payment/cancel",
                    "headers": ("pk", "pc"),
                    "body": {"Date": "2026-11-21", "MerchantUniqueCode": "bulk-1"}}


def test_single_cancel_uses_the_private_api() -> None:
    """A single payment goes to the private API with the private headers."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/private/api/paywall/private/cancel"
        assert request.headers["apikeyprivate"] == "sk"
        return httpx.Response(200, json=envelope(
            {"Result": True, "BulkPaymentId": 7, "TotalPaymentCount": 1}))

    assert make_api(handler).cancel_payment("p-1", DAY, NullObserver()) == Accepted("7", 1)


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(56, Meaning.NOT_FOUND), (94, Meaning.ALREADY_CANCELLED), (97, Meaning.ALREADY_FINALIZED),
     (269, Meaning.NOT_NOW), (12345, Meaning.UNKNOWN)],
)
def test_business_errors_in_a_200_are_refusals_not_success(code: int, meaning: Meaning) -> None:
    """HTTP 200 with ErrorCode != 0 is a refusal with its meaning, never an acceptance."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(None, code=code, result=False))

    result = make_api(handler).cancel_bulk("bulk-1", DAY, NullObserver())
    assert isinstance(result, Refused) and (result.code, result.meaning) == (code, meaning)


def test_result_false_with_code_zero_is_malformed() -> None:
    """An envelope that says neither success nor a code is garbage, ambiguous for a cancel."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(None, code=0, result=False))

    with pytest.raises(errors.MalformedResponse) as caught:
        make_api(handler).cancel_bulk("bulk-1", DAY, NullObserver())
    assert caught.value.ambiguous


@pytest.mark.parametrize(("status", "error"), [(401, errors.AuthFailed), (503,
                         errors.ProviderUnavailable), (429, errors.RateLimited)])
def test_http_errors_map_to_the_tree(status: int, error: type[Exception]) -> None:
    """Non-2xx answers raise the error tree's class for their status."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=envelope(None, code=status, result=False))

    with pytest.raises(error):
        make_api(handler).refund_bulk("bulk-1", DAY, NullObserver())


def test_query_all_pages_through_every_row() -> None:
    """query_all asks for 1,000 rows a page until TotalPages."""
    asked: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["pageNumber"])
        asked.append((request.url.params["pageSize"], str(page)))
        rows = [{"MerchantUniqueCode": f"p{page}-{i}", "PaymentId": page * 10 + i,
                 "Amount": 10.5, "Status": 4, "Scope": "cancel"} for i in range(2)]
        return httpx.Response(200, json=envelope(
            {"TotalCount": 6, "TotalPages": 3, "PageNumber": page, "Payments": rows}))

    rows = list(make_api(handler).query_all("bulk-1", NullObserver()))
    assert asked == [("1000", "1"), ("1000", "2"), ("1000", "3")]
    assert len(rows) == 6 and str(rows[0].amount) == "10.5"
