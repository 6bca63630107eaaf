"""Paywall callback pages: parse the body, verify its Hash (constant time, any configured key).

The Hash covers only ``{key}###{BulkPaymentId}###{MerchantUniqueCode}``, not the payment list: a
leaked hash can be replayed with other payments. The receiver therefore stores the first copy of a
page and never lets a later copy change it, and recovery reads the query endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.domain.money import MoneyError, parse_decimal
from worker.providers.paywall import STATUS_FAILED, STATUS_SUCCESSFUL

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999.99")


class MalformedCallback(ValueError):
    """A body that is not a callback page we can read (answered 400)."""


@dataclass(frozen=True, slots=True)
class CallbackPayment:
    merchant_unique_code: str
    payment_id: str
    amount: Decimal
    status: int
    scope: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.merchant_unique_code, "id": self.payment_id,
                "amount": str(self.amount), "status": self.status, "scope": self.scope}


@dataclass(frozen=True, slots=True)
class CallbackPage:
    bulk_payment_id: str
    merchant_unique_code: str
    hash: str
    page_number: int
    total_pages: int
    payments: list[CallbackPayment]

    def totals(self) -> dict[str, dict[str, str | int]]:
        """Per scope: payments and their amount; how many succeeded (for how much) or failed."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.payments:
            t = out.setdefault(p.scope, {"count": 0, "amount": Decimal(0), "ok_count": 0,
                                         "ok_amount": Decimal(0), "failed_count": 0,
                                         "pending_count": 0})
            t["count"] += 1
            t["amount"] += p.amount
            if p.status == STATUS_SUCCESSFUL:
                t["ok_count"] += 1
                t["ok_amount"] += p.amount
            elif p.status in STATUS_FAILED:
                t["failed_count"] += 1
            else:
                t["pending_count"] += 1
        return {scope: {k: (str(v) if isinstance(v, Decimal) else v) for k, v in t.items()}
                for scope, t in out.items()}


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data or data[name] is None:
        raise MalformedCallback(f"{name} is missing")
    return data[name]


def _positive_int(data: dict[str, Any], name: str) -> int:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedCallback(f"{name} must be a whole number")
    try:
        number = int(value)
    except ValueError as exc:
        raise MalformedCallback(f"{name} must be a whole number") from exc
    if number < 1:
        raise MalformedCallback(f"{name} must be at least 1")
    return number


def parse_callback(raw: bytes) -> CallbackPage:
    """The page in ``raw``; :class:`MalformedCallback` for anything we cannot read."""
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCallback("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedCallback("body is not a JSON object")
    if data.get("IsCompressed") is True:
        # The compression algorithm is undocumented: refuse rather than guess.
        raise MalformedCallback("compressed callbacks are not supported")
    bulk_id = _field(data, "BulkPaymentId")
    code = _field(data, "MerchantUniqueCode")
    given_hash = _field(data, "Hash")
    if isinstance(bulk_id, bool) or not isinstance(bulk_id, int | str) or not str(bulk_id):
        raise MalformedCallback("BulkPaymentId must be a number or a string")
    if not isinstance(code, str) or not code or len(code) > 200:
        raise MalformedCallback("MerchantUniqueCode must be a string of 1 to 200 characters")
    if not isinstance(given_hash, str):
        raise MalformedCallback("Hash must be a string")
    page_number = _positive_int(data, "PageNumber") if "PageNumber" in data else 1
    total_pages = _positive_int(data, "TotalPages") if "TotalPages" in data else 1
    if page_number > total_pages:
        raise MalformedCallback("PageNumber is beyond TotalPages")
    raw_payments = data.get("Payments") or []
    if not isinstance(raw_payments, list):
        raise MalformedCallback("Payments must be a list")
    payments = [_payment(item, index) for index, item in enumerate(raw_payments)]
    return CallbackPage(str(bulk_id), code, given_hash, page_number, total_pages, payments)


def _payment(item: Any, index: int) -> CallbackPayment:
    if not isinstance(item, dict):
        raise MalformedCallback(f"Payments[{index}] is not an object")
    try:
        status = item["Status"]
        if isinstance(status, bool) or not isinstance(status, int):
            raise MalformedCallback(f"Payments[{index}].Status must be a number")
        amount = parse_decimal(item["Amount"])
        payment = CallbackPayment(
            merchant_unique_code=str(item["MerchantUniqueCode"]),
            payment_id=str(item["PaymentId"]),
            amount=amount,
            status=status,
            scope=str(item.get("Scope") or "").lower(),
        )
    except (KeyError, MoneyError) as exc:
        raise MalformedCallback(f"Payments[{index}] is missing or garbles a field") from exc
    if not (0 <= amount <= MAX_AMOUNT) or amount != amount.quantize(CENT):
        raise MalformedCallback(f"Payments[{index}].Amount is not an amount with 2 places")
    return payment


def expected_hash(key: bytes, bulk_payment_id: str, merchant_unique_code: str) -> str:
    message = key + f"###{bulk_payment_id}###{merchant_unique_code}".encode()
    return hashlib.sha256(message).hexdigest()


def hash_matches(page: CallbackPage, keys: list[bytes]) -> bool:
    """True when the page's Hash matches any configured key; every key is always compared."""
    given = page.hash.strip().lower().encode()
    matched = False
    for key in keys:
        wanted = expected_hash(key, page.bulk_payment_id, page.merchant_unique_code).encode()
        matched |= hmac.compare_digest(given, wanted)
    return matched
