"""6DOT50 Pay API adapter: token, cancel a DRAFT batch, read a batch and its summary.

Auth: ``POST /authentication/getToken`` with ``{key, secret}`` gives a bearer token valid for 15
minutes; on a 401 the token is fetched again once and the call repeated once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from worker.domain.money import MoneyError, parse_decimal
from worker.providers.calls import CallObserver, NullObserver, OnCall, call, parse_json
from worker.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from worker.providers.retry import parse_retry_after
from worker.providers.tokens import BearerToken

PROVIDER = "sixdot50"
# [assume] 6DOT50 pays out to mobile numbers in South Africa and its API carries no currency.
CURRENCY = "ZAR"
TOKEN_LIFETIME = timedelta(minutes=15)


class BatchStatus:
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class BatchSummary:
    payments_count: int
    payments_amount: Decimal
    settled_count: int
    settled_amount: Decimal
    cancelled_count: int
    cancelled_amount: Decimal


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    status: str
    summary: BatchSummary


def error_for_response(response: httpx.Response, operation: str) -> ProviderError:
    """Map a non-2xx answer to the error tree (the one place that knows 6DOT50's statuses)."""
    status = response.status_code
    try:
        message = str(response.json().get("message") or response.reason_phrase)
    except (ValueError, AttributeError):
        message = response.reason_phrase or "error"
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": status,
        "body": response.text,
        "request_id": response.headers.get("x-request-id"),
    }
    if status in (401, 403):
        return AuthFailed(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 409:
        return Conflict(message, **common)
    if status == 429:
        return RateLimited(
            message, retry_after=parse_retry_after(response.headers.get("retry-after")), **common
        )
    if status >= 500:
        return ProviderUnavailable(message, **common)
    return InvalidRequest(message, **common)


def parse_batch(data: Any, operation: str, *, mutating: bool) -> Batch:
    """A Batch from its JSON; anything missing or not a number is a malformed answer."""
    try:
        summary = data["summary"]
        return Batch(
            id=str(data["id"]),
            status=str(data["statusCode"]).upper(),
            summary=BatchSummary(
                payments_count=int(summary["paymentsCount"]),
                payments_amount=parse_decimal(summary["paymentsAmount"]),
                settled_count=int(summary.get("settledCount") or 0),
                settled_amount=parse_decimal(summary.get("settledAmount") or 0),
                cancelled_count=int(summary.get("cancelledCount") or 0),
                cancelled_amount=parse_decimal(summary.get("cancelledAmount") or 0),
            ),
        )
    except (KeyError, TypeError, ValueError, MoneyError) as exc:
        raise MalformedResponse(
            f"batch answer is missing or garbles a field ({exc!r})",
            provider=PROVIDER,
            operation=operation,
            ambiguous=mutating,
        ) from exc


class SixDot50:
    """The Pay API over one long-lived client; the token is shared by every thread."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        key: SecretStr,
        secret: SecretStr,
        on_call: OnCall | None = None,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._key = key
        self._secret = secret
        self._on_call: OnCall = on_call or (lambda _record: None)
        self.token = BearerToken(self._fetch_token)

    def _fetch_token(self) -> tuple[str, datetime]:
        request = self._client.build_request(
            "POST",
            f"{self._base}/authentication/getToken",
            json={"key": self._key.get_secret_value(), "secret": self._secret.get_secret_value()},
        )
        result: tuple[str, datetime] = call(
            self._client, request, self._interpret_token, provider=PROVIDER,
            operation="get_token", mutating=False, observer=NullObserver(),
            on_call=self._on_call)
        return result

    def _interpret_token(self, response: httpx.Response) -> tuple[str, datetime]:
        if response.status_code >= 400:
            raise error_for_response(response, "get_token")
        data = parse_json(response, provider=PROVIDER, operation="get_token", mutating=False)
        if not isinstance(data, dict) or data.get("success") is not True or not data.get("token"):
            raise AuthFailed("getToken refused the key and secret", provider=PROVIDER,
                             operation="get_token", http_status=response.status_code)
        expires = datetime.now(UTC) + TOKEN_LIFETIME
        raw_expiry = data.get("expiresAt")
        if isinstance(raw_expiry, str):
            try:
                parsed = datetime.fromisoformat(raw_expiry.replace("Z", "+00:00"))
                # The docs say all timestamps are UTC, also when the offset is left out.
                expires = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except ValueError:
                pass
        return str(data["token"]), expires

    def cancel_batch(self, batch_id: uuid.UUID, observer: CallObserver) -> Batch:
        """Cancel a DRAFT batch; answers the batch, CANCELLED with its cancelled totals."""
        return self._batch_call("POST", f"/batches/{batch_id}/cancel", "cancel_batch", observer,
                                mutating=True)

    def get_batch(self, batch_id: uuid.UUID, observer: CallObserver) -> Batch:
        """The batch with its summary: the reconciliation's source of truth."""
        return self._batch_call("GET", f"/batches/{batch_id}", "get_batch", observer,
                                mutating=False)

    def _batch_call(
        self, method: str, path: str, operation: str, observer: CallObserver, *, mutating: bool
    ) -> Batch:
        def interpret(response: httpx.Response) -> Batch:
            if response.status_code >= 400:
                raise error_for_response(response, operation)
            data = parse_json(response, provider=PROVIDER, operation=operation, mutating=mutating)
            return parse_batch(data, operation, mutating=mutating)

        def send(token: str) -> Batch:
            request = self._client.build_request(
                method, f"{self._base}{path}", headers={"Authorization": f"Bearer {token}"}
            )
            return call(self._client, request, interpret, provider=PROVIDER, operation=operation,
                        mutating=mutating, observer=observer, on_call=self._on_call)

        return self.token.call(send)
