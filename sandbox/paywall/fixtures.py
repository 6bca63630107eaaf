"""Paywall's control routes under `/_sandbox/paywall`: seed bulks and payments, steer callbacks.

Never on the call log and never an effect: this is the test's hand, not the provider's API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import Blueprint, request

from sandbox.control import ControlAnswer, ControlError, field_value, json_object, refuse_unknown
from sandbox.paywall.callbacks import pending, sender
from sandbox.paywall.model import (
    NAME,
    Bulk,
    Payment,
    PaywallStore,
)
from sandbox.paywall.settings import DELIVERY_CHECKS, checked, parse_day
from sandbox.sixdot50 import MAX_AMOUNT, parse_amount
from sandbox.state import JSONObject, current_state, iso_utc

control = Blueprint(f"{NAME}_control", __name__, url_prefix=f"/_sandbox/{NAME}")
SHOWN_CODES = 10  # a seeded bulk answers its first payment codes only, never 150,000
DEFAULT_AMOUNT = "10.00"
_COMMON = ("code", "date", "callback_url", *DELIVERY_CHECKS)
_BULK_FIELDS = (*_COMMON, "count", "amount_each", "payments", "fail", "fail_count")
_PAYMENT_FIELDS = (*_COMMON, "amount", "fail")


def _store() -> PaywallStore:
    store = current_state().stores[NAME]
    assert isinstance(store, PaywallStore)
    return store


def _holder(store: PaywallStore, body: Mapping[str, Any], prefix: str) -> Bulk:
    """A new bulk (or holder of one payment) from the fields both seeding routes share."""
    code = field_value(body, "code", str) or f"{prefix}-{uuid.uuid4().hex[:12]}"
    if store.taken(code):
        raise ControlError(f"MerchantUniqueCode {code} exists", 409)
    try:
        day = parse_day(body["date"]) if body.get("date") is not None else store.today()
    except ValueError as error:
        raise ControlError(str(error)) from error
    given = {k: v for k, v in body.items() if k in _STEERING and v is not None}
    delivery = checked(given, _STEERING)
    callback_url = delivery.pop("callback_url", None)
    return Bulk(code, day, callback_url, store.clock(), delivery=delivery)


def _callback_url(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        raise ControlError(f"{name} must be an http(s) URL")
    return value


_STEERING = {"callback_url": _callback_url, **DELIVERY_CHECKS}


def _specs(body: Mapping[str, Any], code: str) -> list[tuple[str, Decimal, bool]]:
    """(code, amount, fail) of each payment: explicit `payments`, or `count` x `amount_each`."""
    if "payments" in body:
        if {"count", "amount_each"} & set(body):
            raise ControlError("give either payments or count/amount_each")
        raw = field_value(body, "payments", list, [])
        if not all(isinstance(p, dict) for p in raw):
            raise ControlError("payments is a list of objects")
        for payment in raw:
            refuse_unknown(payment, ("code", "amount"))
        pairs = [
            (
                field_value(p, "code", str) or f"{code}-{n:06d}",
                parse_amount(p.get("amount"), "amount"),
            )
            for n, p in enumerate(raw, 1)
        ]
    else:
        count = field_value(body, "count", int, 1)
        amount = parse_amount(body.get("amount_each", DEFAULT_AMOUNT), "amount_each")
        pairs = [(f"{code}-{n:06d}", amount) for n in range(1, count + 1)]
    if not pairs:
        raise ControlError("a bulk needs at least one payment")
    if "fail" in body and "fail_count" in body:
        raise ControlError("give either fail or fail_count")
    fail_count = field_value(body, "fail_count", int, 0)
    failing = field_value(body, "fail", list, [])
    if fail_count > len(pairs):
        raise ControlError("fail_count cannot exceed the number of payments")
    unknown = set(failing) - {c for c, _ in pairs}
    if unknown:
        raise ControlError(f"fail names codes not in this bulk: {sorted(map(str, unknown))}")
    failing_set = set(failing)
    return [(c, a, n < fail_count or c in failing_set) for n, (c, a) in enumerate(pairs)]


@control.post("/bulks")
def seed_bulk() -> ControlAnswer:
    """Create a bulk of payments (all sales, Status 4) made on `date`."""
    body = json_object(known=_BULK_FIELDS)
    state = current_state()
    with state.lock:
        store = _store()
        bulk = _holder(store, body, "bulk")
        specs = _specs(body, bulk.code)
        codes = {c for c, _, _ in specs}
        if len(codes) < len(specs) or codes & store.payments.keys() or codes & store.bulks.keys():
            raise ControlError("payment codes must be unique (and not used already)", 409)
        if bulk.code in codes:
            raise ControlError("a payment cannot have the bulk's code", 409)
        bulk.total = sum((a for _, a, _ in specs), Decimal("0.00"))
        if bulk.total > MAX_AMOUNT:
            raise ControlError(f"the bulk total must not exceed {MAX_AMOUNT}")
        store.add_payments(bulk, specs)
        return _bulk_json(bulk, brief=True), 201


@control.get("/bulks/<code>")
def read_bulk(code: str) -> ControlAnswer:
    """A bulk: its day, totals, first codes, delivery overrides and every operation."""
    with current_state().lock:
        bulk = _store().bulks.get(code)
        if bulk is None:
            raise ControlError(f"no bulk {code}", 404)
        return _bulk_json(bulk, brief=False), 200


def _bulk_json(bulk: Bulk, *, brief: bool) -> JSONObject:
    shown: JSONObject = {
        "code": bulk.code,
        "date": bulk.day.isoformat(),
        "payments": len(bulk.payments),
        "total": str(bulk.total),
        "payment_codes": [p.code for p in bulk.payments[:SHOWN_CODES]],
    }
    if not brief:
        shown |= {
            "callback_url": bulk.callback_url,
            "failing": sum(p.fail for p in bulk.payments),
            "delivery": dict(bulk.delivery),
            "created_at": iso_utc(bulk.created_at),
            "operations": [op.to_json() for op in bulk.ops],
            "payment_operations": [op.to_json() for op in bulk.private_ops],
        }
    return shown


@control.post("/payments")
def seed_payment() -> ControlAnswer:
    """Create one payment on its own (for the private API)."""
    body = json_object(known=_PAYMENT_FIELDS)
    state = current_state()
    with state.lock:
        store = _store()
        holder = _holder(store, body, "payment")
        holder.standalone = True
        amount = parse_amount(body.get("amount"), "amount")
        holder.total = amount
        store.add_payments(holder, [(holder.code, amount, field_value(body, "fail", bool, False))])
        return _payment_json(holder.payments[0]), 201


@control.get("/payments/<code>")
def read_payment(code: str) -> ControlAnswer:
    """A payment (standalone or in a bulk), its state and the operations that covered it."""
    with current_state().lock:
        payment = _store().payments.get(code)
        if payment is None:
            raise ControlError(f"no payment {code}", 404)
        return _payment_json(payment), 200


def _payment_json(payment: Payment) -> JSONObject:
    holder = payment.holder
    return {
        "code": payment.code,
        "payment_id": payment.payment_id,
        "amount": str(payment.amount),
        "date": holder.day.isoformat(),
        "bulk": None if holder.standalone else holder.code,
        "fail": payment.fail,
        "state": payment.state,
        "operations": [
            {"bulk_payment_id": op.id, "kind": op.kind, "code": op.code, "status": row["Status"]}
            for op in payment.operations()
            for row in [op.row(payment)]
        ],
    }


@control.post("/bulks/<code>/callbacks")
def steer_callbacks(code: str) -> ControlAnswer:
    """Change a bulk's (or standalone payment's) callback URL and delivery overrides.

    A field set to null goes back to the global setting.
    """
    body = json_object(known=_STEERING)
    with current_state().lock:
        holder = _steerable(_store(), code)
        changes = checked({k: v for k, v in body.items() if v is not None}, _STEERING)
        if "callback_url" in body:
            holder.callback_url = changes.pop("callback_url", None)
        for name in body.keys() - changes.keys() - {"callback_url"}:
            holder.delivery.pop(name, None)
        holder.delivery.update(changes)
        return {"code": code, "callback_url": holder.callback_url, "delivery": holder.delivery}, 200


def _steerable(store: PaywallStore, code: str) -> Bulk:
    bulk = store.bulks.get(code)
    payment = store.payments.get(code)
    if bulk is None and payment is not None and payment.holder.standalone:
        bulk = payment.holder
    if bulk is None:
        raise ControlError(f"no bulk or standalone payment {code}", 404)
    return bulk


@control.post("/bulks/<code>/deliver")
def deliver(code: str) -> ControlAnswer:
    """Send the held callbacks of operations on `code` (or on payments of bulk `code`) now."""
    json_object(known=())
    with current_state().lock:
        store = _store()
        if store.find_subject(code) is None:
            raise ControlError(f"no bulk or payment {code}", 404)
        plans = store.release(code)
        for plan in plans:
            sender().submit(plan, delay_ms=0)
        return {"released": [plan.op.id for plan in plans]}, 200


@control.get("/deliveries")
def deliveries() -> ControlAnswer:
    """Every callback delivery attempt, optionally for one callback `code`, and how many page
    deliveries are still to be made (`pending`: 0 once the sender is idle)."""
    code = request.args.get("code")
    with current_state().lock:
        found = [dict(d) for d in _store().deliveries if not code or d["code"] == code]
    return {"deliveries": found, "pending": pending()}, 200
