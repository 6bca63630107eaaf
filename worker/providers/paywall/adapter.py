"""Paywall adapter: bulk and single cancel and refund, send-callback and the query.

Business refusals are returned as a :class:`Refused` value (expected outcomes), never mistaken
for success. Transport, auth and server failures raise from the error tree; one that answers a
call that changes state (a cancel or a refund) is ambiguous: it may have taken effect, so the
target is read before anything is sent again. Answers are read by ``envelope`` and
``wire``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

import httpx
from pydantic import SecretStr

from worker.providers.calls import CallObserver, OnCall, call
from worker.providers.errors import InvalidRequest, MalformedResponse, ProviderError
from worker.providers.paywall.codes import NUMBERING, Meaning
from worker.providers.paywall.envelope import (
    PROVIDER,
    Accepted,
    Refused,
    common,
    open_envelope,
    read_queued,
)
from worker.providers.paywall.wire import PaymentRow, QueryPage, read_query_page

__all__ = ["CURRENCY", "PROVIDER", "Accepted", "Paywall", "Refused"]

CURRENCY = "TRY"  # [assume] docs/providers-assumed.md
QUERY_PAGE_SIZE = 1000  # [doc] the query endpoint's largest page
# Every loop is bounded: 10,000 pages are 10 million rows, far beyond any bulk we know of.
MAX_QUERY_PAGES = 10_000
STATUS_SUCCESSFUL = 4  # [doc] payment statuses
STATUS_FAILED = (5, 7)


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
        codes: Mapping[int, Meaning] = NUMBERING,
    ) -> None:
        self._client = client
        self._codes = codes
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
            body = open_envelope(response, operation, mutating=True, codes=self._codes)
            return body if isinstance(body, Refused) else read_queued(response, body, operation)

        # [doc seed 001] the request body: the payment day as YYYY-MM-DD, and the code.
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
            body = open_envelope(response, "send_callback", mutating=False, codes=self._codes)
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
            body = open_envelope(response, "query_bulk", mutating=False, codes=self._codes)
            if isinstance(body, Refused):
                return body
            page = read_query_page(body)
            if page is None:
                raise MalformedResponse("query Body has no list of payments",
                                        **common(response, "query_bulk"))
            return page

        params = {"merchantuniquecode": code, "pageSize": page_size, "pageNumber": page_number}
        result: QueryPage | Refused = self._send(
            "GET", "/api/paywall/payment/bulk/payment/query", "query_bulk", observer, interpret,
            mutating=False, params=params)
        return result

    def query_all(self, code: str, observer: CallObserver, page_size: int = QUERY_PAGE_SIZE,
                  max_pages: int = MAX_QUERY_PAGES) -> Iterator[PaymentRow]:
        """Every row under a code, page after page, never all held at once.

        The end is a page shorter than ``page_size`` (or empty): the totals' names are not
        documented, so they are never needed. A page answered twice (a ``pageNumber`` Paywall
        did not hear) stops the read rather than counting its rows again.
        """
        previous: list[PaymentRow] | None = None
        for page_number in range(1, max_pages + 1):
            page = self.query_bulk(code, page_number, observer, page_size)
            if isinstance(page, Refused):
                raise ProviderError(f"query refused: {page.message}", provider=PROVIDER,
                                    operation="query_bulk", provider_code=str(page.code))
            if page.rows and page.rows == previous:
                raise MalformedResponse(f"page {page_number} repeats page {page_number - 1}",
                                        provider=PROVIDER, operation="query_bulk")
            yield from page.rows
            if len(page.rows) < page_size:
                return
            previous = page.rows
        raise MalformedResponse(f"more than {max_pages} query pages", provider=PROVIDER,
                                operation="query_bulk")
