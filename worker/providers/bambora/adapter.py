"""Bambora (Worldline) payments API v1 adapter: OAuth token, read and cancel one payment.

Every call carries ``Authorization: Bearer <jwt>`` and ``API-Version: 1``. Errors are
``{type, title, detail, status}`` bodies, matched on ``type``. Amounts are minor units on the
wire and ``Decimal`` inside: converted here, and only here.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from worker.domain.money import parse_decimal
from worker.providers.calls import CallObserver, OnCall, call, parse_json
from worker.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotCancellable,
    NotFound,
    ProviderError,
    ProviderUnavailable,
)
from worker.providers.fields import first_present
from worker.providers.retry import rate_limited
from worker.providers.tokens import BearerToken, fetch_token

PROVIDER = "bambora"
API_VERSION = "1"
SCOPE = "read_payment cancel_payment"
# [assume] when expires_in is absent: an hour, and a 401 fetches a new one sooner.
DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
# ISO 4217 minor-unit exponents that are not 2.
EXPONENTS = {"JPY": 0, "ISK": 0, "KRW": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3,
             "JOD": 3, "TND": 3}
# [assume] the operation that carries the payment's amount and currency is its authorization:
# an operation whose `type` starts with this (seed 002 calls it "Authorize token").
AUTHORIZE_TYPE_PREFIX = "authoriz"
# [assume] where no authorize operation carries them, the payment itself may (top-level names).
AMOUNT_NAMES = ("amount",)
CURRENCY_NAMES = ("currency",)
CURRENCY_CODE = re.compile(r"[A-Za-z]{3}")


class PaymentState:
    """[doc] the states of seed 002 and the API reference; compared without regard to case."""

    AUTHORIZED = "Authorized"
    CANCELED = "Canceled"
    CAPTURED = "Captured"
    SETTLED = "Settled"
    REFUNDED = "Refunded"
    ALL = ("None", "Authorized", "Authorization Expired", "Declined", "Voided", "Captured",
           "Refunded", "Settled", "Canceled")
    # [assume] British spelling read as the documented one.
    SPELLINGS = {"cancelled": CANCELED}


def from_minor(amount: Decimal | int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-EXPONENTS.get(currency, 2))


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment as read. ``reference`` is the one we asked for; amount and currency are None
    when the answer gave none we can use (``amount_minor`` keeps what it did give)."""

    reference: str
    state: str
    amount: Decimal | None = None
    currency: str | None = None
    amount_minor: Decimal | None = None


def error_for_response(response: httpx.Response, operation: str, *,
                       mutating: bool = False) -> ProviderError:
    """Map an error answer by its problem ``type`` first, its status second."""
    status = response.status_code
    problem: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            problem = parsed
    except ValueError:
        pass
    kind = str(problem.get("type") or "").rstrip("/").rsplit("/", 1)[-1]
    message = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    common: dict[str, Any] = {"provider": PROVIDER, "operation": operation,
                              "http_status": status, "provider_code": kind or None,
                              "body": response.text,
                              "request_id": response.headers.get("request-id")}
    if kind in ("cannot_cancel", "invalid_payment_state_transition") or status in (402, 422):
        return NotCancellable(message, **common)
    if kind == "payment_not_found" or status == 404:
        return NotFound(message, **common)
    if kind == "payment_operation_blocked" or status == 409:
        return Conflict(message, **common)
    if status in (401, 403):
        return AuthFailed(message, **common)
    if status == 429:
        return rate_limited(message, response, **common)
    if status >= 500:
        # A server error answering a cancel says nothing of whether the cancel took effect.
        return ProviderUnavailable(message, ambiguous=mutating, **common)
    return InvalidRequest(message, **common)


def parse_payment(data: Any, reference: str, operation: str, *, mutating: bool) -> Payment:
    """A payment from its JSON [doc, seed 002]; only ``state`` is required.

    Amount and currency come from the authorize operation in ``operations[]`` when present,
    else from the payment's own fields; either may be missing or unusable (seed 002's currency
    is "string") without making the answer unreadable: the state decides.
    """
    state = data.get("state") if isinstance(data, dict) else None
    if not isinstance(state, str) or not state.strip():
        raise MalformedResponse("payment answer has no state", provider=PROVIDER,
                                operation=operation, ambiguous=mutating)
    minor, currency = _money(data)
    amount = from_minor(minor, currency) if minor is not None and currency else None
    return Payment(reference, _state_name(state), amount, currency, minor)


def _state_name(state: str) -> str:
    folded = state.strip().casefold()
    known = {name.casefold(): name for name in PaymentState.ALL}
    return known.get(folded) or PaymentState.SPELLINGS.get(folded) or state.strip()


def _money(payment: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    """(amount in minor units, ISO currency) of the payment; each None when unusable."""
    operations = payment.get("operations")
    authorizations = [
        op for op in (operations if isinstance(operations, list) else [])
        if isinstance(op, dict) and str(op.get("type") or "").casefold().startswith(
            AUTHORIZE_TYPE_PREFIX)
    ]
    # A failed authorization attempt may precede the one that succeeded.
    authorizations.sort(key=lambda op: op.get("success") is False)
    for source in [*authorizations[:1], payment]:
        raw_amount = first_present(source, AMOUNT_NAMES)
        raw_currency = first_present(source, CURRENCY_NAMES)
        if raw_amount is not None or raw_currency is not None:
            return _minor_units(raw_amount), _currency(raw_currency)
    return None, None


def _minor_units(value: object) -> Decimal | None:
    try:
        amount = parse_decimal(value)
    except ValueError:
        return None
    return amount.to_integral_value() if amount == amount.to_integral_value() else amount


def _currency(value: object) -> str | None:
    if isinstance(value, str) and CURRENCY_CODE.fullmatch(value.strip()):
        return value.strip().upper()
    return None


def _segment(value: str) -> str:
    """One percent-encoded path segment; "." and ".." encoded too, or URL resolution eats them."""
    if value.strip(".") == "":
        return "%2E" * len(value)
    return quote(value, safe="")


class Bambora:
    """The payments API over one long-lived client; the token is shared by every thread."""

    def __init__(self, client: httpx.Client, *, base_url: str, auth_url: str,
                 client_id: SecretStr, client_secret: SecretStr,
                 on_call: OnCall | None = None) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._auth = auth_url.rstrip("/")
        self._credentials = (client_id, client_secret)
        self._on_call: OnCall = on_call or (lambda _record: None)
        self.token = BearerToken(self._fetch_token)

    def _fetch_token(self) -> tuple[str, datetime]:
        client_id, secret = self._credentials
        basic = base64.b64encode(
            f"{client_id.get_secret_value()}:{secret.get_secret_value()}".encode()
        ).decode()
        request = self._client.build_request(
            "POST", f"{self._auth}/connect/token",
            data={"grant_type": "client_credentials", "scope": SCOPE},
            headers={"Authorization": f"Basic {basic}"},
        )
        return fetch_token(self._client, request, self._interpret_token, provider=PROVIDER,
                           on_call=self._on_call)

    def _interpret_token(self, response: httpx.Response) -> tuple[str, datetime]:
        if response.status_code >= 400:
            error = error_for_response(response, "get_token")
            if response.status_code in (400, 401):
                raise AuthFailed("the token service refused the client credentials",
                                 provider=PROVIDER, operation="get_token",
                                 http_status=response.status_code)
            raise error
        data = parse_json(response, provider=PROVIDER, operation="get_token", mutating=False)
        if not isinstance(data, dict) or not data.get("access_token"):
            raise MalformedResponse("token answer has no access_token", provider=PROVIDER,
                                    operation="get_token")
        lifetime = DEFAULT_TOKEN_LIFETIME
        expires_in = data.get("expires_in")
        if isinstance(expires_in, int | Decimal) and not isinstance(expires_in, bool):
            lifetime = timedelta(seconds=float(expires_in))
        return str(data["access_token"]), datetime.now(UTC) + lifetime

    def _payment_url(self, merchant: str, reference: str, action: str = "") -> str:
        # The reference is the merchant's own (up to 2,000 characters): one path segment.
        return (f"{self._base}/v1/merchants/{_segment(merchant)}/payments/"
                f"{_segment(reference)}/{action}")

    def _payment_call(self, method: str, reference: str, url: str, operation: str,
                      observer: CallObserver, *, mutating: bool, json: Any = None) -> Payment:
        def interpret(response: httpx.Response) -> Payment:
            # [doc] a cancel answers 201, a read 200; [assume] any 2xx with a payment is read
            # alike: the payment's state decides, not the status code.
            if not response.is_success:
                if response.status_code < 400:
                    raise MalformedResponse(f"unexpected HTTP {response.status_code}",
                                            provider=PROVIDER, operation=operation,
                                            ambiguous=mutating)
                raise error_for_response(response, operation, mutating=mutating)
            data = parse_json(response, provider=PROVIDER, operation=operation,
                              mutating=mutating)
            return parse_payment(data, reference, operation, mutating=mutating)

        def send(token: str) -> Payment:
            request = self._client.build_request(
                method, url, json=json,
                headers={"Authorization": f"Bearer {token}", "API-Version": API_VERSION})
            return call(self._client, request, interpret, provider=PROVIDER, operation=operation,
                        mutating=mutating, observer=observer, on_call=self._on_call)

        return self.token.call(send)

    def get_payment(self, merchant: str, reference: str, observer: CallObserver) -> Payment:
        return self._payment_call("GET", reference, self._payment_url(merchant, reference),
                                  "get_payment", observer, mutating=False)

    def cancel_payment(self, merchant: str, reference: str, observer: CallObserver,
                       comment: str | None = None) -> Payment:
        """Cancel an Authorized payment (201 with the payment, now Canceled)."""
        body = {"comment": comment[:256]} if comment else None
        return self._payment_call("POST", reference,
                                  self._payment_url(merchant, reference, "cancel/"),
                                  "cancel_payment", observer, mutating=True, json=body)
