"""Bambora's seeding routes under `/_sandbox/bambora`: payments, states and tokens."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint

from sandbox.bambora.api import install_converter, raw_segments
from sandbox.bambora.model import (
    CURRENCY,
    MAX_BULK,
    MAX_REFERENCE_LENGTH,
    NAME,
    STATES,
    BamboraStore,
    Payment,
)
from sandbox.control import (
    ControlAnswer,
    ControlError,
    add_revoke_tokens,
    field_value,
    json_object,
)
from sandbox.state import current_state

control = Blueprint(f"{NAME}_control", __name__, url_prefix=f"/_sandbox/{NAME}")
control.record_once(install_converter)
_PAYMENT_FIELDS = ("merchant", "reference", "state", "amount", "currency")


@control.post("/payments")
def seed_payment() -> ControlAnswer:
    """Create one payment (default Authorized, 10000 minor units, SEK)."""
    body = json_object(known=_PAYMENT_FIELDS)
    payment = _new_payment(body, _text(body, "reference"))
    with current_state().lock:
        payments = _store().payments
        key = (payment.merchant, payment.reference)
        if key in payments:
            raise ControlError("that payment exists", 409)
        payments[key] = payment
        return payment.control_json(), 201


@control.post("/payments/bulk")
def seed_payments() -> ControlAnswer:
    """Create `count` payments `<prefix>1` .. `<prefix><count>` alike, all or nothing."""
    body = json_object(known=("merchant", "count", "prefix", "state", "amount", "currency"))
    count = field_value(body, "count", int, 0)
    prefix = field_value(body, "prefix", str, "ref-")
    if not 1 <= count <= MAX_BULK:
        raise ControlError(f"count must be from 1 to {MAX_BULK}")
    if len(prefix) + len(str(count)) > MAX_REFERENCE_LENGTH:
        raise ControlError(f"references have at most {MAX_REFERENCE_LENGTH} characters")
    model = _new_payment(body, prefix)
    references = [f"{prefix}{n}" for n in range(1, count + 1)]
    with current_state().lock:
        payments = _store().payments
        taken = next((r for r in references if (model.merchant, r) in payments), None)
        if taken is not None:
            raise ControlError(f"payment {taken} exists", 409)
        for reference in references:
            payments[model.merchant, reference] = replace(
                model, reference=reference, operations=[], internal_id=secrets.token_hex(12))
    return {"created": count, "references": references[:10]}, 201


@control.get("/payments/<merchant>/<bambora_rest:reference>", merge_slashes=False)
def read_payment(merchant: str, reference: str) -> ControlAnswer:
    """The payment, without a token and without a call-log entry (reference from the raw path)."""
    match raw_segments():
        case ["", "_sandbox", "bambora", "payments", raw_merchant, *rest] if rest:
            merchant, reference = raw_merchant, "/".join(rest)
    with current_state().lock:
        return _seeded(merchant, reference).control_json(), 200


@control.post("/payments/<merchant>/state")
def move_payment(merchant: str) -> ControlAnswer:
    """Change a payment's state as the merchant portal would: not reflected in the API (seed
    002), which goes on reading the payment as before, yet refuses what the new state forbids."""
    body = json_object(known=("reference", "state"))
    state_name = _state(body, None)
    with current_state().lock:
        payment = _seeded(merchant, _text(body, "reference"))
        payment.portal_state = state_name
        return payment.control_json(), 200


add_revoke_tokens(control, lambda: _store().tokens)


def _store() -> BamboraStore:
    store = current_state().stores[NAME]
    assert isinstance(store, BamboraStore)
    return store


def _seeded(merchant: str, reference: str) -> Payment:
    payment = _store().payments.get((merchant, reference))
    if payment is None:
        raise ControlError(f"no payment {reference!r} for merchant {merchant!r}", 404)
    return payment


def _new_payment(body: Mapping[str, Any], reference: str) -> Payment:
    """A payment from the seeding fields (`reference` aside), created now."""
    currency = field_value(body, "currency", str, "SEK")
    if not CURRENCY.fullmatch(currency):
        raise ControlError("currency is an ISO-4217 code like SEK")
    return Payment(
        merchant=_text(body, "merchant"),
        reference=reference,
        state=_state(body, "Authorized"),
        amount=field_value(body, "amount", int, 10000),
        currency=currency,
        created=current_state().clock(),
    )


def _text(body: Mapping[str, Any], name: str) -> str:
    """A required non-empty string field; a reference has at most 2,000 characters."""
    value = field_value(body, name, str, "")
    if not value:
        raise ControlError(f"{name} is a required non-empty string")
    if name == "reference" and len(value) > MAX_REFERENCE_LENGTH:
        raise ControlError(f"reference has at most {MAX_REFERENCE_LENGTH} characters")
    return str(value)


def _state(body: Mapping[str, Any], default: str | None) -> str:
    value = body.get("state", default)
    if value not in STATES:
        raise ControlError(f"state must be one of: {', '.join(STATES)}")
    return str(value)
