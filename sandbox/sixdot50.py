"""6DOT50 Pay API emulation under `/sixdot50`, and its seeding routes under `/_sandbox/sixdot50`.

Faithful to the provider's pages (seeds 000 and 003); where they are silent, the assumption is a
constant below. Amounts are JSON numbers as the pages' examples write them: whole amounts as
integers (`18500`), others through float (0.10 -> `0.1`), which is exact because every amount
and total stays within 15 significant digits (`MAX_AMOUNT`), which a double round-trips; clients
parse them as `Decimal`. Times are UTC without an offset, as the examples write them
(`"2022-06-14T06:26:43.473"`; the docs say every timestamp is UTC). `externalId` is left out when
the batch has none, as in the examples.
Tokens are session state, not an effect: only batch and payment changes count as effects.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, request

from sandbox.control import (
    ControlAnswer,
    ControlError,
    add_revoke_tokens,
    field_value,
    json_object,
    refuse_unknown,
)
from sandbox.intercept import Answer, Operations
from sandbox.state import Clock, JSONObject, ProviderSpec, current_state, iso_utc

NAME = "sixdot50"
DEFAULT_KEY = "sandbox-key"
DEFAULT_SECRET = "sandbox-secret"
DEFAULT_TOKEN_TTL_SECONDS = 900  # [doc] a token lives 15 minutes
# [assume] cancelling a non-DRAFT batch: the status is undocumented, only "a 4xx".
NOT_CANCELLABLE_STATUS = 400
UNAUTHORIZED = {"message": "Unauthorized"}
BATCH_STATUSES = ("DRAFT", "OPEN", "CLOSED", "CANCELLED")
PAYMENT_STATUSES = ("DRAFT", "PENDING", "SETTLED", "CANCELLED", "DELETED")
# Seeding: what a batch's payments are by default, and how they follow a batch status move.
SEEDED_PAYMENT_STATUS = {
    "DRAFT": "DRAFT", "OPEN": "PENDING", "CLOSED": "SETTLED", "CANCELLED": "CANCELLED",
}  # fmt: skip
PAYMENTS_FOLLOW = {
    "DRAFT": {},
    "OPEN": {"DRAFT": "PENDING"},
    "CLOSED": {"DRAFT": "SETTLED", "PENDING": "SETTLED"},
    "CANCELLED": {"DRAFT": "CANCELLED"},
}
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999.99")


@dataclass
class Payment:
    """One payout to a mobile number."""

    id: str
    batch_id: str
    amount: Decimal
    msisdn: str
    status: str
    created_at: datetime
    firstname: str = "Sandbox"
    lastname: str = "Payee"
    external_id: str | None = None
    settled_at: datetime | None = None
    is_member: bool = False
    referral_amount: Decimal = Decimal("0.00")
    referral_msisdn: str | None = None

    def to_json(self) -> JSONObject:
        """The payment as `GET /batches/{id}/payments` lists it, in the documented order."""
        return {
            "id": self.id,
            "batchId": self.batch_id,
            "msisdn": self.msisdn,
            "amount": _number(self.amount),
            "firstname": self.firstname,
            "lastname": self.lastname,
            "externalId": self.external_id,
            "statusCode": self.status,
            "settledAt": utc_text(self.settled_at) if self.settled_at else None,
            "isMember": self.is_member,
            "referralAmount": _number(self.referral_amount),
            "referralMsisdn": self.referral_msisdn,
            "createdAt": utc_text(self.created_at),
        }


@dataclass
class Batch:
    """A batch of payments; its summary is always computed from them."""

    id: str
    name: str
    status: str
    external_id: str | None
    created_at: datetime
    payments: list[Payment] = field(default_factory=list)

    def to_json(self) -> JSONObject:
        """The Batch model: `{id, name, statusCode, externalId, createdAt, summary}`."""
        live = [p for p in self.payments if p.status != "DELETED"]
        settled = [p for p in live if p.status == "SETTLED"]
        cancelled = [p for p in live if p.status == "CANCELLED"]
        external = {"externalId": self.external_id} if self.external_id is not None else {}
        return {
            "id": self.id,
            "name": self.name,
            "statusCode": self.status,
            **external,
            "createdAt": utc_text(self.created_at),
            "summary": {
                "paymentsAmount": _total(p.amount for p in live),
                "paymentsCount": len(live),
                "referralsAmount": _total(p.referral_amount for p in live),
                "settledAmount": _total(p.amount for p in settled),
                "settledCount": len(settled),
                "cancelledAmount": _total(p.amount for p in cancelled),
                "cancelledCount": len(cancelled),
            },
        }

    def move_to(self, status: str, now: datetime) -> None:
        """Set the batch status; its payments follow as `PAYMENTS_FOLLOW` says."""
        self.status = status
        for payment in self.payments:
            payment.status = PAYMENTS_FOLLOW[status].get(payment.status, payment.status)
            if payment.status == "SETTLED" and payment.settled_at is None:
                payment.settled_at = now


def _total(amounts: Iterable[Decimal]) -> int | float:
    return _number(sum(amounts, Decimal(0)))


def _number(amount: Decimal) -> int | float:
    """A JSON number as the docs' examples write it: `18500`, `0.1`."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def utc_text(moment: datetime) -> str:
    """UTC without an offset, to the millisecond, as 6DOT50 writes it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


class SixDot50Store:
    """Credentials, tokens and batches of one emulated 6DOT50 account."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.key = DEFAULT_KEY
        self.secret = DEFAULT_SECRET
        self.token_ttl_seconds = DEFAULT_TOKEN_TTL_SECONDS
        self.tokens: dict[str, datetime] = {}
        self.batches: dict[str, Batch] = {}

    def settings(self) -> JSONObject:
        """Key and token lifetime; the secret is masked."""
        return {"key": self.key, "secret": "***", "token_ttl_seconds": self.token_ttl_seconds}

    def update_settings(self, changes: Mapping[str, Any]) -> None:
        """Change `key`, `secret` and/or `token_ttl_seconds`, all or nothing."""
        refuse_unknown(changes, ("key", "secret", "token_ttl_seconds"))
        key = field_value(changes, "key", str, self.key)
        secret = field_value(changes, "secret", str, self.secret)
        if not (key and secret):
            raise ControlError("key and secret must not be empty")
        self.token_ttl_seconds = field_value(
            changes, "token_ttl_seconds", int, self.token_ttl_seconds
        )
        self.key, self.secret = key, secret

    def issue_token(self, key: object, secret: object) -> tuple[str, datetime] | None:
        """A fresh token and its expiry, if the credentials match."""
        if not (isinstance(key, str) and isinstance(secret, str)):
            return None
        key_ok = secrets.compare_digest(key.encode(), self.key.encode())
        if not (secrets.compare_digest(secret.encode(), self.secret.encode()) and key_ok):
            return None
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self.clock() + timedelta(seconds=self.token_ttl_seconds)
        return token, self.tokens[token]

    def authorized(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries a known, unexpired bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        expires_at = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires_at is not None and self.clock() < expires_at


def canonical_id(batch_id: str) -> str:
    """A GUID in its lowercase hyphenated form; anything else as sent."""
    try:
        return str(uuid.UUID(batch_id))
    except ValueError:
        return batch_id


blueprint = Blueprint(NAME, __name__, url_prefix="/sixdot50")
operation = Operations(NAME, canonical=canonical_id)


@blueprint.post("/authentication/getToken")
@operation("get_token")
def get_token(store: SixDot50Store) -> Answer:
    """`{key, secret}` -> `{success, token, expiresAt}`, or `{success: false}` (still a 200)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return Answer({"message": "The request body is not valid JSON."}, 400)
    issued = store.issue_token(body.get("key"), body.get("secret"))
    if issued is None:
        return Answer({"success": False})
    token, expires_at = issued
    return Answer({"success": True, "token": token, "expiresAt": iso_utc(expires_at)})


@blueprint.post("/batches/<batch_id>/cancel")
@operation("cancel_batch", target="batch_id")
def cancel_batch(store: SixDot50Store, batch_id: str) -> Answer:
    """Cancel a DRAFT batch and its DRAFT payments; any other status is refused."""
    batch = _find_batch(store, batch_id)
    if isinstance(batch, Answer):
        return batch
    if batch.status != "DRAFT":
        refusal = {"message": f"Batch cannot be cancelled in status {batch.status}"}
        return Answer(refusal, NOT_CANCELLABLE_STATUS)
    batch.move_to("CANCELLED", store.clock())
    return Answer(batch.to_json(), effect=True)


@blueprint.get("/batches/<batch_id>")
@operation("get_batch", target="batch_id")
def get_batch(store: SixDot50Store, batch_id: str) -> Answer:
    batch = _find_batch(store, batch_id)
    return batch if isinstance(batch, Answer) else Answer(batch.to_json())


@blueprint.get("/batches/<batch_id>/payments")
@operation("list_payments", target="batch_id")
def list_payments(store: SixDot50Store, batch_id: str) -> Answer:
    batch = _find_batch(store, batch_id)
    return batch if isinstance(batch, Answer) else Answer([p.to_json() for p in batch.payments])


def _find_batch(store: SixDot50Store, batch_id: str) -> Batch | Answer:
    """The batch, or the provider's refusal: 401 before 400 (bad id) before 404."""
    if not store.authorized(request.headers.get("Authorization")):
        return Answer(UNAUTHORIZED, 401)
    try:
        key = str(uuid.UUID(batch_id))
    except ValueError:
        return Answer({"message": f"The value '{batch_id}' is not valid for id."}, 400)
    batch = store.batches.get(key)
    return Answer({"message": "Batch not found"}, 404) if batch is None else batch


control = Blueprint(f"{NAME}_control", __name__, url_prefix=f"/_sandbox/{NAME}")
_BATCH_FIELDS = (
    "id", "name", "externalId", "statusCode", "payments", "count", "amount_each", "settled",
)  # fmt: skip
# Seeded payment text fields: wire name -> attribute.
_PAYMENT_TEXTS = {
    "msisdn": "msisdn", "firstname": "firstname", "lastname": "lastname",
    "externalId": "external_id", "referralMsisdn": "referral_msisdn",
}  # fmt: skip
_PAYMENT_FIELDS = ("id", "amount", "statusCode", "isMember", "referralAmount", *_PAYMENT_TEXTS)


@control.post("/batches")
def seed_batch() -> ControlAnswer:
    """Create a batch from explicit `payments` or the `count`/`amount_each`/`settled` shortcut."""
    body = json_object(known=_BATCH_FIELDS)
    state = current_state()
    now = state.clock()
    status = _status(body, BATCH_STATUSES, "DRAFT")
    batch = Batch(
        id=_guid(body.get("id") or uuid.uuid4()),
        name=field_value(body, "name", str, "Sandbox batch"),
        status=status,
        external_id=field_value(body, "externalId", str),
        created_at=now,
    )
    default = Payment(
        id="", batch_id=batch.id, amount=CENT, msisdn="", created_at=now,
        status=SEEDED_PAYMENT_STATUS[status],
    )  # fmt: skip
    batch.payments = [_seed_payment(default, raw, n) for n, raw in enumerate(_payment_specs(body))]
    if sum((p.amount for p in batch.payments), Decimal(0)) > MAX_AMOUNT:
        raise ControlError(f"the batch total must not exceed {MAX_AMOUNT}")
    with state.lock:
        store = _store()
        if batch.id in store.batches:
            raise ControlError(f"batch {batch.id} exists", 409)
        store.batches[batch.id] = batch
        return batch.to_json(), 201


@control.get("/batches/<batch_id>")
def read_batch(batch_id: str) -> ControlAnswer:
    """The batch and its payments, without a token and without a call-log entry."""
    with current_state().lock:
        batch = _seeded(batch_id)
        return {"batch": batch.to_json(), "payments": [p.to_json() for p in batch.payments]}, 200


@control.post("/batches/<batch_id>/status")
def move_batch(batch_id: str) -> ControlAnswer:
    """Move a batch (e.g. submit it: DRAFT -> OPEN); its payments follow."""
    status = _status(json_object(known=("statusCode",)), BATCH_STATUSES, None)
    state = current_state()
    with state.lock:
        batch = _seeded(batch_id)
        batch.move_to(status, state.clock())
        return batch.to_json(), 200


add_revoke_tokens(control, lambda: _store().tokens)


def _store() -> SixDot50Store:
    store = current_state().stores[NAME]
    assert isinstance(store, SixDot50Store)
    return store


def _seeded(batch_id: str) -> Batch:
    batch = _store().batches.get(_guid(batch_id))
    if batch is None:
        raise ControlError(f"no batch {batch_id}", 404)
    return batch


def _payment_specs(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Explicit payments, or `count` copies of `amount_each` with the first `settled` SETTLED."""
    if "payments" in body:
        if {"count", "amount_each", "settled"} & set(body):
            raise ControlError("give either payments or count/amount_each/settled")
        payments: list[Mapping[str, Any]] = field_value(body, "payments", list, [])
        if not all(isinstance(p, dict) for p in payments):
            raise ControlError("payments is a list of objects")
        return payments
    count, settled = field_value(body, "count", int, 0), field_value(body, "settled", int, 0)
    if settled > count:
        raise ControlError("settled cannot exceed count")
    amount = body.get("amount_each")
    return [{"amount": amount, "statusCode": "SETTLED"}] * settled + [{"amount": amount}] * (
        count - settled
    )


def _seed_payment(default: Payment, raw: Mapping[str, Any], index: int) -> Payment:
    refuse_unknown(raw, _PAYMENT_FIELDS)
    status = _status(raw, PAYMENT_STATUSES, default.status)
    texts = {
        attribute: field_value(raw, name, str, getattr(default, attribute))
        for name, attribute in _PAYMENT_TEXTS.items()
    }
    return replace(
        default,
        **texts | {"msisdn": texts["msisdn"] or f"25078{index:07d}"},
        id=_guid(raw.get("id") or uuid.uuid4()),
        amount=parse_amount(raw.get("amount"), "amount"),
        status=status,
        settled_at=default.created_at if status == "SETTLED" else None,
        is_member=field_value(raw, "isMember", bool, False),
        referral_amount=parse_amount(raw.get("referralAmount", "0"), "referralAmount", zero=True),
    )


def parse_amount(value: object, name: str, *, zero: bool = False) -> Decimal:
    """A positive (with `zero`: non-negative) amount with at most 2 decimals, up to MAX_AMOUNT."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ControlError(f'{name} is a decimal string like "100.00"')
    try:
        # repr() of a float is its shortest round-tripping decimal: 100.1 stays 100.1.
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation as error:
        raise ControlError(f"{name} is not a decimal: {value!r}") from error
    lowest = Decimal(0) if zero else CENT
    if not (amount.is_finite() and lowest <= amount <= MAX_AMOUNT):
        raise ControlError(f"{name} must be between {lowest} and {MAX_AMOUNT}: {value!r}")
    if amount != amount.quantize(CENT):
        raise ControlError(f"{name} has more than 2 decimals: {value!r}")
    return amount.quantize(CENT)


def _guid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise ControlError(f"not a GUID: {value!r}") from error


def _status(body: Mapping[str, Any], allowed: tuple[str, ...], default: str | None) -> str:
    value = body.get("statusCode", default)
    if value not in allowed:
        raise ControlError(f"statusCode must be one of: {', '.join(allowed)}")
    return str(value)


PROVIDER = ProviderSpec(
    name=NAME,
    blueprint=blueprint,
    control=control,
    operations=tuple(operation.names),
    new_store=SixDot50Store,
)
