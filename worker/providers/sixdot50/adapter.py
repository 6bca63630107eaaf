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

from worker.domain.money import parse_decimal
from worker.providers.calls import CallObserver, OnCall, call, parse_json
from worker.providers.errors import (
    AuthFailed,
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderError,
    ProviderUnavailable,
)
from worker.providers.fields import read_count, read_utc
from worker.providers.retry import rate_limited
from worker.providers.tokens import BearerToken, fetch_token

PROVIDER = "sixdot50"
# [assume] 6DOT50 pays out to mobile numbers in South Africa and its API carries no currency.
CURRENCY = "ZAR"
# [doc] a token lives 15 minutes (used when the answer's expiresAt is unreadable).
TOKEN_LIFETIME = timedelta(minutes=15)
# [assume] the status 6DOT50 answers a cancel of a batch that is not DRAFT is undocumented: any
# refusal but auth (401/403), unknown id (404) and rate limit (429) is decided by reading the batch.
REFUSALS: tuple[type[ProviderError], ...] = (InvalidRequest, Conflict)


class BatchStatus:
    """[doc] statusCode values; [assume] compared without regard to case."""

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
    """A batch as read; ``summary`` is None when the answer had none we could read."""

    id: str
    status: str
    summary: BatchSummary | None
    created_at: datetime | None = None


def error_for_response(response: httpx.Response, operation: str, *,
                       mutating: bool = False) -> ProviderError:
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
        return rate_limited(message, response, **common)
    if status >= 500:
        # A server error answering a cancel says nothing of whether the cancel took effect.
        return ProviderUnavailable(message, ambiguous=mutating, **common)
    return InvalidRequest(message, **common)


def parse_summary(data: object) -> BatchSummary | None:
    """The BatchSummary [doc, seeds 000/003]; None when absent or without its payment totals.

    The payment totals say what the batch holds; cancelled and settled figures left out count
    as none yet (a summary that then does not add up is read again, never trusted as final).
    """
    if not isinstance(data, dict):
        return None
    try:
        return BatchSummary(
            payments_count=read_count(data["paymentsCount"]),
            payments_amount=parse_decimal(data["paymentsAmount"]),
            settled_count=read_count(data.get("settledCount") or 0),
            settled_amount=parse_decimal(data.get("settledAmount") or 0),
            cancelled_count=read_count(data.get("cancelledCount") or 0),
            cancelled_amount=parse_decimal(data.get("cancelledAmount") or 0),
        )
    except (KeyError, TypeError, ValueError):
        return None


def parse_batch(data: Any, batch_id: str, operation: str, *, mutating: bool) -> Batch:
    """A Batch from its JSON [doc, seeds 000/003]; only ``statusCode`` is required.

    The status decides every outcome; the id is the one we asked for when the answer leaves it
    out; the summary and ``createdAt`` (UTC, also without an offset) are read when usable.
    """
    status = data.get("statusCode") if isinstance(data, dict) else None
    if not isinstance(status, str) or not status.strip():
        raise MalformedResponse(
            "batch answer has no statusCode", provider=PROVIDER, operation=operation,
            ambiguous=mutating)
    answered_id = data.get("id")
    return Batch(
        id=answered_id if isinstance(answered_id, str) and answered_id else batch_id,
        status=status.strip().upper(),
        summary=parse_summary(data.get("summary")),
        created_at=read_utc(data.get("createdAt")),
    )


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
        return fetch_token(self._client, request, self._interpret_token, provider=PROVIDER,
                           on_call=self._on_call)

    def _interpret_token(self, response: httpx.Response) -> tuple[str, datetime]:
        if response.status_code >= 400:
            raise error_for_response(response, "get_token")
        data = parse_json(response, provider=PROVIDER, operation="get_token", mutating=False)
        if not isinstance(data, dict) or data.get("success") is not True or not data.get("token"):
            raise AuthFailed("getToken refused the key and secret", provider=PROVIDER,
                             operation="get_token", http_status=response.status_code)
        expires = read_utc(data.get("expiresAt")) or datetime.now(UTC) + TOKEN_LIFETIME
        return str(data["token"]), expires

    def cancel_batch(self, batch_id: uuid.UUID, observer: CallObserver) -> Batch:
        """Cancel a DRAFT batch; answers the batch, CANCELLED with its cancelled totals."""
        return self._batch_call("POST", batch_id, "/cancel", "cancel_batch", observer,
                                mutating=True)

    def get_batch(self, batch_id: uuid.UUID, observer: CallObserver) -> Batch:
        """The batch with its summary: the reconciliation's source of truth."""
        return self._batch_call("GET", batch_id, "", "get_batch", observer, mutating=False)

    def _batch_call(self, method: str, batch_id: uuid.UUID, action: str, operation: str,
                    observer: CallObserver, *, mutating: bool) -> Batch:
        def interpret(response: httpx.Response) -> Batch:
            if response.status_code >= 400:
                raise error_for_response(response, operation, mutating=mutating)
            data = parse_json(response, provider=PROVIDER, operation=operation, mutating=mutating)
            return parse_batch(data, str(batch_id), operation, mutating=mutating)

        def send(token: str) -> Batch:
            request = self._client.build_request(
                method, f"{self._base}/batches/{batch_id}{action}",
                headers={"Authorization": f"Bearer {token}"},
            )
            return call(self._client, request, interpret, provider=PROVIDER, operation=operation,
                        mutating=mutating, observer=observer, on_call=self._on_call)

        return self.token.call(send)
