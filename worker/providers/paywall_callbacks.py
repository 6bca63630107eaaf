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
from operator import itemgetter
from typing import Any

from worker.providers.paywall import STATUS_FAILED, STATUS_SUCCESSFUL

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999.99")


class MalformedCallback(ValueError):
    """A body that is not a callback page we can read (answered 400)."""


# One payment as stored: [payment code, payment id, amount, status, scope]. A list, not an
# object per payment: pages carry 1,000 payments and the receiver's speed matters.
Row = list[Any]


@dataclass(frozen=True, slots=True)
class CallbackPage:
    bulk_payment_id: str
    merchant_unique_code: str
    hash: str
    page_number: int
    total_pages: int
    rows: list[Row]
    scope_totals: dict[str, dict[str, Any]]

    def totals(self) -> dict[str, dict[str, str | int]]:
        """Per scope: payments and their amount; how many succeeded (for how much) or failed."""
        return {scope: {k: (str(v) if isinstance(v, Decimal) else v) for k, v in t.items()}
                for scope, t in self.scope_totals.items()}


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
    except RecursionError as exc:
        raise MalformedCallback("body is nested too deep") from exc
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
    try:
        # JSON may escape a lone surrogate ("\ud800"): no UTF-8 text, and no key of ours.
        f"{bulk_id}{code}{given_hash}".encode()
    except UnicodeEncodeError as exc:
        raise MalformedCallback("a field is not valid Unicode text") from exc
    page_number = _positive_int(data, "PageNumber") if "PageNumber" in data else 1
    total_pages = _positive_int(data, "TotalPages") if "TotalPages" in data else 1
    if page_number > total_pages:
        raise MalformedCallback("PageNumber is beyond TotalPages")
    raw_payments = data.get("Payments") or []
    if not isinstance(raw_payments, list):
        raise MalformedCallback("Payments must be a list")
    rows, totals = _payments(raw_payments)
    return CallbackPage(str(bulk_id), code, given_hash, page_number, total_pages, rows, totals)


_FIELDS = itemgetter("MerchantUniqueCode", "PaymentId", "Amount", "Status")


def _payments(items: list[Any]) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """Validate every payment and sum them per scope and status, in one pass.

    This is the receiver's hot loop (1,000 payments a page), hence the plain tuples and the
    amounts' decimal places checked once, on their sum (a sum of amounts with at most two places
    has at most two places, and one with more always shows it).
    """
    rows: list[Row] = []
    sums: dict[tuple[str, int], list[Any]] = {}
    for index, item in enumerate(items):
        try:
            code, payment_id, amount, status = _FIELDS(item)
        except (KeyError, TypeError) as exc:
            raise MalformedCallback(f"Payments[{index}] is not a payment object") from exc
        if type(status) is not int:
            raise MalformedCallback(f"Payments[{index}].Status must be a number")
        if type(amount) is not Decimal:
            if type(amount) is not int:
                raise MalformedCallback(f"Payments[{index}].Amount must be a number")
            amount = Decimal(amount)
        if not (0 <= amount <= MAX_AMOUNT):
            raise MalformedCallback(f"Payments[{index}].Amount is out of range")
        scope = item.get("Scope")
        scope = scope.lower() if type(scope) is str else ""
        rows.append([code if type(code) is str else str(code),
                     payment_id if type(payment_id) is str else str(payment_id),
                     str(amount), status, scope])
        acc = sums.get((scope, status))
        if acc is None:
            sums[(scope, status)] = [1, amount]
        else:
            acc[0] += 1
            acc[1] += amount
    totals: dict[str, dict[str, Any]] = {}
    for (scope, status), (count, amount) in sums.items():
        if amount.as_tuple().exponent < -2:
            _find_bad_amount(items)
        t = totals.setdefault(scope, {"count": 0, "amount": Decimal(0), "ok_count": 0,
                                      "ok_amount": Decimal(0), "failed_count": 0,
                                      "pending_count": 0})
        t["count"] += count
        t["amount"] += amount
        if status == STATUS_SUCCESSFUL:
            t["ok_count"] += count
            t["ok_amount"] += amount
        elif status in STATUS_FAILED:
            t["failed_count"] += count
        else:
            t["pending_count"] += count
    return rows, totals


def _find_bad_amount(items: list[Any]) -> None:
    for index, item in enumerate(items):
        amount = Decimal(item["Amount"])
        if amount != amount.quantize(CENT):
            raise MalformedCallback(f"Payments[{index}].Amount is not an amount with 2 places")


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
