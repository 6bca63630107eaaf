"""Paywall adapter: bulk and single cancel and refund, send-callback, query and query summary.

Every answer comes in an envelope ``{ErrorCodeType, ErrorMessage, ErrorCode, Result, Message,
Body}``. Business refusals arrive as HTTP 200 with ``ErrorCode != 0``: they are returned as a
:class:`Refused` value (expected outcomes), never mistaken for success. Transport, auth and server
failures raise from the error tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from worker.domain.money import MoneyError, parse_decimal
from worker.providers.calls import CallObserver, OnCall, call, parse_json
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from worker.providers.paywall_codes import Meaning, meaning_of
from worker.providers.retry import parse_retry_after

PROVIDER = "paywall"
CURRENCY = "TRY"  # [assume] docs/providers-assumed.md
QUERY_PAGE_SIZE = 1000  # [doc] the query endpoint's largest page
STATUS_SUCCESSFUL = 4  # [doc] payment statuses
STATUS_FAILED = (5, 7)


@dataclass(frozen=True, slots=True)
class Accepted:
    """Paywall queued the operation; results come later by callback."""

    bulk_payment_id: str
    total_payment_count: int


@dataclass(frozen=True, slots=True)
class Refused:
    """A business refusal (HTTP 200, ErrorCode != 0)."""

    code: int
    meaning: Meaning
    message: str


@dataclass(frozen=True, slots=True)
class PaymentRow:
    merchant_unique_code: str
    payment_id: str
    amount: Decimal
    status: int
    scope: str


@dataclass(frozen=True, slots=True)
class QueryPage:
    total_count: int
    total_pages: int
    page_number: int
    rows: list[PaymentRow]


def _common(response: httpx.Response, operation: str) -> dict[str, Any]:
    return {"provider": PROVIDER, "operation": operation, "http_status": response.status_code,
            "body": response.text}


def open_envelope(response: httpx.Response, operation: str, *, mutating: bool) -> Any:
    """The envelope's Body on success, a :class:`Refused` for a business refusal."""
    status = response.status_code
    if status in (401, 403):
        raise AuthFailed("Paywall refused the API headers", **_common(response, operation))
    if status == 429:
        raise RateLimited("rate limited", retry_after=parse_retry_after(
            response.headers.get("retry-after")), **_common(response, operation))
    if status >= 500:
        raise ProviderUnavailable(f"HTTP {status}", **_common(response, operation))
    if status >= 400:
        raise InvalidRequest(f"HTTP {status}", **_common(response, operation))
    data = parse_json(response, provider=PROVIDER, operation=operation, mutating=mutating)
    if not isinstance(data, dict) or "ErrorCode" not in data:
        raise MalformedResponse("answer is not Paywall's envelope", provider=PROVIDER,
                                operation=operation, http_status=status, ambiguous=mutating)
    try:
        code = int(data.get("ErrorCode") or 0)
    except (TypeError, ValueError) as exc:
        raise MalformedResponse("ErrorCode is not a number", provider=PROVIDER,
                                operation=operation, ambiguous=mutating) from exc
    if code == 0 and data.get("Result") is True:
        return data.get("Body")
    meaning = meaning_of(code)
    message = str(data.get("ErrorMessage") or data.get("Message") or "refused")
    if meaning is Meaning.AUTH:
        raise AuthFailed(message, provider_code=str(code), **_common(response, operation))
    if meaning is Meaning.UNAVAILABLE:
        raise ProviderUnavailable(message, provider_code=str(code), **_common(response, operation))
    if code == 0:
        # Result false with no error code: the envelope contradicts itself.
        raise MalformedResponse("Result false without an ErrorCode", provider=PROVIDER,
                                operation=operation, ambiguous=mutating)
    return Refused(code, meaning, message)


def _int(value: Any, name: str, operation: str) -> int:
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"{name} missing", provider=PROVIDER, operation=operation)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise MalformedResponse(f"{name} is not a number", provider=PROVIDER,
                                operation=operation) from exc


def parse_row(raw: Any, operation: str) -> PaymentRow:
    try:
        return PaymentRow(
            merchant_unique_code=str(raw["MerchantUniqueCode"]),
            payment_id=str(raw["PaymentId"]),
            amount=parse_decimal(raw["Amount"]),
            status=int(raw["Status"]),
            scope=str(raw.get("Scope") or "").lower(),
        )
    except (KeyError, TypeError, ValueError, MoneyError) as exc:
        raise MalformedResponse(f"payment row garbled ({exc!r})", provider=PROVIDER,
                                operation=operation) from exc


class Paywall:
    """Paywall's public and private APIs over one long-lived client."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        public_url: str,
        private_url: str | None,
        public_headers: tuple[SecretStr, SecretStr],
        private_headers: tuple[SecretStr, SecretStr] | None,
        on_call: OnCall | None = None,
    ) -> None:
        self._client = client
        self._public = public_url.rstrip("/")
        self._private = private_url.rstrip("/") if private_url else None
        self._public_headers = public_headers
        self._private_headers = private_headers
        self._on_call: OnCall = on_call or (lambda _record: None)

    def _headers(self, private: bool) -> dict[str, str]:
        if private:
            if self._private_headers is None or self._private is None:
                raise InvalidRequest("the private API is not configured", provider=PROVIDER,
                                     operation="private")
            key, client_id = self._private_headers
            return {"apikeyprivate": key.get_secret_value(),
                    "apiclientprivate": client_id.get_secret_value()}
        key, client_id = self._public_headers
        return {"apikeypublic": key.get_secret_value(),
                "apiclientpublic": client_id.get_secret_value()}

    def _send(self, method: str, path: str, operation: str, observer: CallObserver,
              interpret: Callable[[httpx.Response], Any], *, private: bool = False,
              mutating: bool, **kwargs: Any) -> Any:
        base = self._private if private else self._public
        request = self._client.build_request(method, f"{base}{path}",
                                             headers=self._headers(private), **kwargs)
        return call(self._client, request, interpret, provider=PROVIDER, operation=operation,
                    mutating=mutating, observer=observer, on_call=self._on_call)

    def _operation(self, path: str, operation: str, code: str, day: date,
                   observer: CallObserver, *, private: bool = False) -> Accepted | Refused:
        def interpret(response: httpx.Response) -> Accepted | Refused:
            body = open_envelope(response, operation, mutating=True)
            if isinstance(body, Refused):
                return body
            if not isinstance(body, dict):
                raise MalformedResponse("Body is not an object", provider=PROVIDER,
                                        operation=operation, ambiguous=True)
            return Accepted(
                bulk_payment_id=str(_int(body.get("BulkPaymentId"), "BulkPaymentId", operation)),
                total_payment_count=_int(body.get("TotalPaymentCount"), "TotalPaymentCount",
                                         operation),
            )

        payload = {"Date": day.isoformat(), "MerchantUniqueCode": code}
        result: Accepted | Refused = self._send("POST", path, operation, observer, interpret,
                                                private=private, mutating=True, json=payload)
        return result

    def cancel_bulk(self, code: str, day: date, observer: CallObserver) -> Accepted | Refused:
        return self._operation("/api/paywall/payment/bulk/payment/cancel", "cancel_bulk", code,
                               day, observer)

    def refund_bulk(self, code: str, day: date, observer: CallObserver) -> Accepted | Refused:
        return self._operation("/api/paywall/payment/bulk/payment/refund", "refund_bulk", code,
                               day, observer)

    def cancel_payment(self, code: str, day: date, observer: CallObserver) -> Accepted | Refused:
        return self._operation("/api/paywall/private/cancel", "cancel_payment", code, day,
                               observer, private=True)

    def refund_payment(self, code: str, day: date, observer: CallObserver) -> Accepted | Refused:
        return self._operation("/api/paywall/private/refund", "refund_payment", code, day,
                               observer, private=True)

    def send_callback(self, code: str, day: date, observer: CallObserver) -> Refused | None:
        """Ask Paywall to send the latest operation's callback pages again (last 7 days)."""

        def interpret(response: httpx.Response) -> Refused | None:
            body = open_envelope(response, "send_callback", mutating=False)
            return body if isinstance(body, Refused) else None

        payload = {"Date": day.isoformat(), "MerchantUniqueCode": code}
        result: Refused | None = self._send(
            "POST", "/api/paywall/payment/bulk/send/callback", "send_callback", observer,
            interpret, mutating=False, json=payload)
        return result

    def query_bulk(self, code: str, page_number: int, observer: CallObserver,
                   page_size: int = QUERY_PAGE_SIZE) -> QueryPage | Refused:
        """One page of the per-payment rows (sale, cancel, refund) under a code."""

        def interpret(response: httpx.Response) -> QueryPage | Refused:
            body = open_envelope(response, "query_bulk", mutating=False)
            if isinstance(body, Refused):
                return body
            if not isinstance(body, dict) or not isinstance(body.get("Payments"), list):
                raise MalformedResponse("query Body has no Payments list", provider=PROVIDER,
                                        operation="query_bulk")
            return QueryPage(
                total_count=_int(body.get("TotalCount"), "TotalCount", "query_bulk"),
                total_pages=_int(body.get("TotalPages"), "TotalPages", "query_bulk"),
                page_number=_int(body.get("PageNumber"), "PageNumber", "query_bulk"),
                rows=[parse_row(raw, "query_bulk") for raw in body["Payments"]],
            )

        params = {"merchantuniquecode": code, "pageSize": page_size, "pageNumber": page_number}
        result: QueryPage | Refused = self._send(
            "GET", "/api/paywall/payment/bulk/payment/query", "query_bulk", observer, interpret,
            mutating=False, params=params)
        return result

    def query_summary(self, code: str, observer: CallObserver) -> dict[str, Any] | Refused:
        """Totals by operation (sale, cancel, refund) under a code."""

        def interpret(response: httpx.Response) -> dict[str, Any] | Refused:
            body = open_envelope(response, "query_summary", mutating=False)
            if not isinstance(body, dict | Refused):
                raise MalformedResponse("summary Body is not an object", provider=PROVIDER,
                                        operation="query_summary")
            return body

        result: dict[str, Any] | Refused = self._send(
            "GET", "/api/paywall/payment/bulk/payment/query/summary", "query_summary", observer,
            interpret, mutating=False, params={"merchantuniquecode": code})
        return result

    def query_all(self, code: str, observer: CallObserver) -> Iterator[PaymentRow]:
        """Every row under a code, page by page (1,000 at a time), never all held at once."""
        page_number = 1
        while True:
            page = self.query_bulk(code, page_number, observer)
            if isinstance(page, Refused):
                raise ProviderError(f"query refused: {page.message}", provider=PROVIDER,
                                    operation="query_bulk", provider_code=str(page.code))
            yield from page.rows
            if page_number >= page.total_pages or not page.rows:
                return
            page_number += 1
