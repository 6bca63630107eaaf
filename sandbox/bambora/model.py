"""Bambora's data and refusals: constants, payments, the account store and the error body."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from sandbox.control import ControlError, field_value, refuse_unknown
from sandbox.state import Clock, JSONObject, iso_utc

NAME = "bambora"
API_PREFIX, AUTH_PREFIX = "/bambora", "/bambora-auth"
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_TOKEN_TTL_SECONDS = 3600  # [assume] the lifetime is undocumented; expires_in says it
API_VERSION = "1"
MAX_REFERENCE_LENGTH = 2000
MAX_COMMENT_LENGTH = 256
MAX_BULK = 100_000
PROBLEMS = "https://api.bambora.com/problems/"  # [assume] the prefix of every error `type`
STATES = (
    "None", "Authorized", "Authorization Expired", "Declined", "Voided", "Captured", "Refunded",
    "Settled", "Canceled",
)  # fmt: skip
CANCELLABLE = "Authorized"
CANNOT_CANCEL = frozenset({"Captured", "Settled", "Refunded"})  # 402; any other state: 422
CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(slots=True)
class Payment:
    """One card payment as the account holds it.

    `state` is what the API reads. `portal_state` is set by the merchant portal, whose changes
    "won't be reflected in the API backend" (seed 002): the API keeps reading `state`, while a
    cancel is decided on the payment's true state. `operations` lists what was done through the
    API, in the documented operation shape.
    """

    merchant: str
    reference: str
    state: str
    amount: int  # minor units
    currency: str
    created: datetime
    operations: list[JSONObject] = field(default_factory=list)
    portal_state: str | None = None
    internal_id: str = field(default_factory=lambda: secrets.token_hex(12))
    version: int = 0

    @property
    def true_state(self) -> str:
        """The state a cancel is decided on: the portal's change if any, else the API's."""
        return self.portal_state or self.state

    def to_json(self) -> JSONObject:
        """The API's payment body, exactly the keys of seed 002 [doc]; no top-level reference,
        amount or currency. [assume] `external_id` is the merchant's payment reference."""
        return {
            "_locked_at": None,
            "_version": self.version,
            "external_id": self.reference,
            "internal_id": self.internal_id,
            "merchant_id": self.merchant,
            "operations": [self._authorization(), *self.operations],
            "schema": 0,
            "state": self.state,
        }

    def control_json(self) -> JSONObject:
        """The control API's view: the seeding fields, the portal's state and the API body."""
        return {
            "reference": self.reference,
            "merchant": self.merchant,
            "state": self.state,
            "portal_state": self.portal_state,
            "amount": self.amount,
            "currency": self.currency,
            "created": iso_utc(self.created),
            "payment": self.to_json(),
        }

    def cancel(self, at: datetime, comment: str | None) -> None:
        """Record a successful cancel through the API (seed 002's "Cancel" operation)."""
        self.state = "Canceled"
        self.portal_state = None
        self.version += 1
        self.operations.append({
            "code": "00", "comment": comment, "id": secrets.token_hex(8),
            "references": self._authorization()["id"], "success": True,
            "timestamp": iso_utc(at), "type": "Cancel",
        })  # fmt: skip

    def _authorization(self) -> JSONObject:
        """The authorize operation every payment starts with: it carries amount and currency."""
        return {
            "amount": self.amount,
            "code": "00" if self.state != "Declined" else "05",
            "comment": None,
            "currency": self.currency,
            "id": f"{self.internal_id}-auth",
            "psp": "sandbox",
            "psp_id": self.internal_id[:8],
            "psp_reference": f"psp-{self.internal_id}",
            "success": self.state != "Declined",
            "timestamp": iso_utc(self.created),
            "token": f"tok_{self.internal_id}",
            "type": "Authorize token",
        }


class BamboraStore:
    """Client credentials, tokens and payments (by merchant and reference) of one account."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET
        self.token_ttl_seconds = DEFAULT_TOKEN_TTL_SECONDS
        self.tokens: dict[str, datetime] = {}
        self.payments: dict[tuple[str, str], Payment] = {}

    def settings(self) -> JSONObject:
        """Client id and token lifetime; the secret is masked."""
        return {
            "client_id": self.client_id,
            "client_secret": "***",
            "token_ttl_seconds": self.token_ttl_seconds,
        }

    def update_settings(self, changes: Mapping[str, Any]) -> None:
        """Change `client_id`, `client_secret` and/or `token_ttl_seconds`, all or nothing."""
        refuse_unknown(changes, ("client_id", "client_secret", "token_ttl_seconds"))
        client_id = field_value(changes, "client_id", str, self.client_id)
        client_secret = field_value(changes, "client_secret", str, self.client_secret)
        if not (client_id and client_secret):
            raise ControlError("client_id and client_secret must not be empty")
        self.token_ttl_seconds = field_value(
            changes, "token_ttl_seconds", int, self.token_ttl_seconds
        )
        self.client_id, self.client_secret = client_id, client_secret

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        """A fresh opaque bearer token, if the client credentials match."""
        id_ok = secrets.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (id_ok and secret_ok):
            return None
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self.clock() + timedelta(seconds=self.token_ttl_seconds)
        return token

    def authorized(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries a known, unexpired bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        expires_at = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires_at is not None and self.clock() < expires_at


def problem(status: int, code: str, title: str, detail: str) -> JSONObject:
    """The error body: `{type, title, detail, status}`."""
    return {"type": PROBLEMS + code, "title": title, "detail": detail, "status": status}


def error_body(status: int, message: str) -> JSONObject:
    """The error body for answers the sandbox makes up (unknown routes, scripted faults)."""
    if status == HTTPStatus.CONFLICT:
        return problem(status, "payments/payment_operation_blocked", message, message)
    return problem(status, re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_"), message, message)
