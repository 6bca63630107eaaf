"""The Paywall adapter over httpx.MockTransport, against seed 001 first: envelope, codes, headers,
what a cancel queued, and which failures are ambiguous."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import httpx
import pytest

from tests.fakes.providers import paywall_api as make_api
from tests.fakes.providers import paywall_envelope as envelope
from tests.seeds import example_body
from worker.providers import errors
from worker.providers.calls import NullObserver
from worker.providers.paywall.adapter import Accepted, Paywall, Refused
from worker.providers.paywall.codes import Meaning

DAY = date(2026, 11, 21)


def answering(status: int, body: Any) -> Paywall:
    """An adapter whose every call is answered `status` with `body` (bytes sent as they are)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return make_api(lambda request: httpx.Response(status, content=content))


def test_seed_001_answer_is_queued_with_its_bulk_payment_id_and_count() -> None:
    """Seed 001's example answer, verbatim: queued, BulkPaymentId 389, TotalPaymentCount 6."""
    result = answering(200, example_body("001", having="Body")).cancel_bulk(
        "8279c96e-2775-4ecf-b594-3cb8fb265f88", date(2024, 12, 12), NullObserver())
    assert result == Accepted("389", 6)


def test_seed_001_request_is_what_the_adapter_sends() -> None:
    """Seed 001's request body, names and date format exact, to its path with the public headers."""
    documented = example_body("001", having="Date")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=example_body("001", having="Body"))

    make_api(handler).cancel_bulk(documented["MerchantUniqueCode"],
                                  date.fromisoformat(documented["Date"]), NullObserver())
    (request,) = seen
    assert json.loads(request.content) == documented
    assert request.url.path == "/public/api/paywall/payment/bulk/payment/cancel"
    assert (request.headers["apikeypublic"], request.headers["apiclientpublic"]) == ("pk", "pc")


def test_single_cancel_uses_the_private_api() -> None:
    """A single payment goes to the private API with the private headers."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/private/api/paywall/private/cancel"
        assert request.headers["apikeyprivate"] == "sk"
        return httpx.Response(200, json=envelope(
            {"Result": True, "BulkPaymentId": 7, "TotalPaymentCount": 1}))

    assert make_api(handler).cancel_payment("p-1", DAY, NullObserver()) == Accepted("7", 1)


@pytest.mark.parametrize(("body", "expected"), [
    ({"Result": True, "BulkPaymentId": "389"}, Accepted("389", None)),
    ({"Result": True, "BulkPaymentId": 389.0, "TotalPaymentCount": "6"}, Accepted("389", 6)),
    ({"result": True, "bulkPaymentId": 389, "totalPaymentCount": 6}, Accepted("389", 6)),
    ({"Result": True, "TotalPaymentCount": 6}, Accepted(None, 6)),
    ({"BulkPaymentId": 389}, Accepted("389", None)),
])
def test_assumed_fields_missing_or_renamed_never_undo_a_queued_cancel(
        body: dict[str, Any], expected: Accepted) -> None:
    """Only what decides is needed: a count, an id in another spelling or case may be absent."""
    assert answering(200, envelope(body)).cancel_bulk("b", DAY, NullObserver()) == expected


@pytest.mark.parametrize("body", [
    None, [], {"Result": False, "BulkPaymentId": 389}, {"TotalPaymentCount": 6},
])
def test_a_success_that_does_not_say_queued_is_ambiguous(body: Any) -> None:
    """Body.Result false, no Body, or neither Result nor id: ambiguous, retried, never accepted."""
    with pytest.raises(errors.ProviderError) as caught:
        answering(200, envelope(body)).cancel_bulk("b", DAY, NullObserver())
    assert caught.value.ambiguous and caught.value.retryable


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(56, Meaning.NOT_FOUND), (94, Meaning.ALREADY_CANCELLED), (97, Meaning.ALREADY_FINALIZED),
     (269, Meaning.NOT_NOW), (12345, Meaning.UNKNOWN)],
)
def test_business_errors_are_refusals_not_success(code: int, meaning: Meaning) -> None:
    """ErrorCode != 0 is a refusal with its meaning, in a 200 or in a 4xx, never success."""
    for status in (200, 400):
        result = answering(status, envelope(None, code=code, result=False)).cancel_bulk(
            "b", DAY, NullObserver())
        assert isinstance(result, Refused) and (result.code, result.meaning) == (code, meaning)


def test_result_false_with_code_zero_is_malformed_and_ambiguous() -> None:
    """An envelope that says neither success nor a code is garbage, ambiguous for a cancel."""
    with pytest.raises(errors.MalformedResponse) as caught:
        answering(200, envelope(None, code=0, result=False)).cancel_bulk("b", DAY, NullObserver())
    assert caught.value.ambiguous


@pytest.mark.parametrize(("status", "error"), [(401, errors.AuthFailed), (503,
                         errors.ProviderUnavailable), (429, errors.RateLimited),
                         (404, errors.InvalidRequest)])
def test_http_errors_map_to_the_tree(status: int, error: type[Exception]) -> None:
    """Non-2xx answers without a Paywall code raise the error tree's class for their status."""
    with pytest.raises(error):
        answering(status, b"<html>no</html>").refund_bulk("b", DAY, NullObserver())


@pytest.mark.parametrize("answer", [
    (500, b"upstream failed"), (502, envelope(None, code=502, result=False)),
    (200, envelope(None, code=500, result=False)), (200, envelope(None, code=503, result=False)),
    (200, envelope(None, code=5, result=False)), (200, b"{not json"),
])
@pytest.mark.parametrize("operation", ["cancel_bulk", "refund_bulk", "cancel_payment",
                                       "refund_payment"])
def test_a_5xx_or_paywall_exception_answering_a_change_is_ambiguous(
        answer: tuple[int, Any], operation: str) -> None:
    """A 5xx, Paywall's exception code or garbage after a cancel or refund: ambiguous, retried."""
    with pytest.raises(errors.ProviderError) as caught:
        getattr(answering(*answer), operation)("b", DAY, NullObserver())
    assert caught.value.ambiguous and caught.value.retryable


def test_a_5xx_answering_a_read_is_retried_but_not_ambiguous() -> None:
    """A failed query changed nothing: retried, nothing to resolve."""
    with pytest.raises(errors.ProviderUnavailable) as caught:
        answering(503, b"").query_bulk("b", 1, NullObserver())
    assert not caught.value.ambiguous


def test_extra_fields_and_another_error_code_type_change_nothing() -> None:
    """Fields no document names are ignored wherever they are."""
    body = copy.deepcopy(example_body("001", having="Body"))
    body.update(ErrorCodeType="Business", TraceId="abc", Extra={"x": [1, 2]})
    body["Body"].update(QueuedAt="2026-11-21T10:00:00Z", Items=None)
    assert answering(200, body).cancel_bulk("b", DAY, NullObserver()) == Accepted("389", 6)
