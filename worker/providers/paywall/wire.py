"""Reading Paywall's JSON tolerantly: what a document names and a decision needs is required;
everything we assumed is optional, found under its plausible names, and never turns a
documented success into a failure.

"Plausible names" are the documented or assumed name in any letter case (ASP.NET serializers
write ``PascalCase`` or ``camelCase``) and the names another Paywall page gives the same thing
(the cancel answer calls a count ``TotalPaymentCount``; a query may say ``TotalCount``). Numbers
may come as ``10``, ``10.0`` or ``"10.00"``: whole numbers and amounts are read exactly, never
through a float. Where each field comes from: docs/providers-assumed.md, section Paywall.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.domain.money import MoneyError, parse_decimal
from worker.providers.fields import first_present

# [doc seed 001] the cancel answer's Body: Result (queued), BulkPaymentId (its example),
# TotalPaymentCount (its table).
QUEUED_NAMES = ("Result",)
OPERATION_ID_NAMES = ("BulkPaymentId",)
# [assume] a query page's total is named like the cancel answer's, or plainly.
TOTAL_COUNT_NAMES = ("TotalPaymentCount", "TotalCount")
# [assume] a query page's other totals (PROVIDERS.md: names not documented).
TOTAL_PAGES_NAMES = ("TotalPages",)
PAGE_NUMBER_NAMES = ("PageNumber",)
# [doc PROVIDERS.md, the query endpoint] the rows and their fields.
ROWS_NAMES = ("Payments",)
CODE_NAMES = ("MerchantUniqueCode",)
PAYMENT_ID_NAMES = ("PaymentId",)
AMOUNT_NAMES = ("Amount",)
STATUS_NAMES = ("Status",)
SCOPE_NAMES = ("Scope",)
# [assume] Scope is a word; the words we know and what they mean to us.
SCOPES = {"sale": "sale", "cancel": "cancel", "cancellation": "cancel", "refund": "refund"}
# Ids longer than this are not ids (the ledger keeps 64 characters for an operation's id).
MAX_ID_LENGTH = 64


def whole_number(value: Any) -> int | None:
    """``3``, ``3.0`` or ``"3"`` as 3; None for anything that is not a whole number of at most
    ``MAX_ID_LENGTH`` digits (``1e999999999`` would take minutes to become an int)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**MAX_ID_LENGTH else None
    if isinstance(value, str | Decimal | float):
        try:
            number = Decimal(value.strip() if isinstance(value, str) else str(value))
        except InvalidOperation:
            return None
        if (number.is_finite() and number.adjusted() < MAX_ID_LENGTH
                and number == number.to_integral_value()):
            return int(number)
    return None


def operation_id(value: Any) -> str | None:
    """An operation's id in one spelling for every source (``389``, ``389.0``, ``"389"``)."""
    number = whole_number(value)
    if number is not None:
        text = str(number)
        return text if len(text) <= MAX_ID_LENGTH else None
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= MAX_ID_LENGTH and text.isprintable():
            return text
    return None


def flag(value: Any) -> bool | None:
    """A JSON boolean (or its spelling as a string); None when absent or anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def amount(value: Any) -> Decimal | None:
    """An amount read exactly (``10``, ``10.0``, ``"10.00"``); None when absent or garbled."""
    if value is None:
        return None
    try:
        return parse_decimal(value)
    except MoneyError:
        return None


def scope(value: Any) -> str:
    """``sale``, ``cancel`` or ``refund``; ``""`` when absent or a value we cannot read."""
    if isinstance(value, str):
        return SCOPES.get(value.strip().lower(), "")
    return ""


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One query row: a payment's sale, cancel or refund. Unreadable assumed fields are None."""

    merchant_unique_code: str | None
    payment_id: str | None
    amount: Decimal | None
    status: int | None
    scope: str  # "" when Paywall did not say (or said something we cannot read)


def read_row(raw: Mapping[str, Any]) -> PaymentRow:
    code = first_present(raw, CODE_NAMES)
    return PaymentRow(
        merchant_unique_code=str(code) if code is not None else None,
        payment_id=operation_id(first_present(raw, PAYMENT_ID_NAMES)),
        amount=amount(first_present(raw, AMOUNT_NAMES)),
        status=whole_number(first_present(raw, STATUS_NAMES)),
        scope=scope(first_present(raw, SCOPE_NAMES)),
    )


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of the query endpoint; its totals only when Paywall gave them."""

    rows: list[PaymentRow]
    total_count: int | None = None
    total_pages: int | None = None
    page_number: int | None = None


def read_query_page(body: Any) -> QueryPage | None:
    """The page in a query answer's Body; None when it holds no list of rows."""
    raw_rows = body if isinstance(body, list) else (
        first_present(body, ROWS_NAMES) if isinstance(body, Mapping) else None)
    if not isinstance(raw_rows, list) or not all(isinstance(r, Mapping) for r in raw_rows):
        return None
    rows = [read_row(raw) for raw in raw_rows]
    if not isinstance(body, Mapping):
        return QueryPage(rows)
    return QueryPage(
        rows,
        total_count=whole_number(first_present(body, TOTAL_COUNT_NAMES)),
        total_pages=whole_number(first_present(body, TOTAL_PAGES_NAMES)),
        page_number=whole_number(first_present(body, PAGE_NUMBER_NAMES)),
    )
