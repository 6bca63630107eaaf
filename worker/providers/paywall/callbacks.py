"""Paywall callback pages: read the head, verify its Hash, and only then read the payments.

The Hash covers only ``{key}###{BulkPaymentId}###{MerchantUniqueCode}``, not the payment list: a
leaked hash can be replayed with other payments. The receiver therefore stores the first copy of a
page and never lets a later copy change it, and recovery reads the query endpoint.

What a request costs before it is authenticated is bounded: :func:`read_head` makes one pass
over the body that builds none of its values but the few the head needs (msgspec keeps the
payment list as the bytes it is), and checks their lengths. Only a verified page's payments are
decoded (:func:`read_page`), from a list of at most ``MAX_PAYMENTS_BYTES``, at most
``MAX_PAGE_PAYMENTS`` of them. Names are read as documented (PascalCase) or in camelCase.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal
from types import GenericAlias
from typing import Any, TypeVar, cast

import msgspec

from worker.providers.paywall.adapter import STATUS_FAILED, STATUS_SUCCESSFUL
from worker.providers.paywall.wire import operation_id, scope, whole_number

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999.99")
# [doc] large bulks come in pages of 1,000 payments.
MAX_PAGE_PAYMENTS = 1000
# A page of 1,000 payments with 36-character codes measures ~170 KiB (docs/providers-assumed.md):
# 2 MiB leaves each payment 2 KiB for fields we do not know of, and bounds the decoding.
MAX_PAYMENTS_BYTES = 2 * 1024 * 1024
MAX_CODE_LENGTH = 200  # the ledger's column for a MerchantUniqueCode
MAX_HASH_LENGTH = 128  # a SHA-256 in hex is 64
MAX_HEAD_VALUE_BYTES = 4096  # a head field's JSON text (a code of 200 characters, escaped)

_RAW = msgspec.Raw()  # an absent field: no bytes
T = TypeVar("T", bound=msgspec.Struct)


class MalformedCallback(ValueError):
    """A body that is not a callback page we can read (answered 400)."""


class _Head(msgspec.Struct, rename="pascal", gc=False):
    """[doc] BulkPaymentId, Hash, IsCompressed, PageNumber, TotalPages; MerchantUniqueCode is
    named by the Hash's formula; [assume] the payments are a list named ``Payments``. Every
    value stays raw JSON until it is needed; any other field is skipped, never built."""

    bulk_payment_id: msgspec.Raw = _RAW
    merchant_unique_code: msgspec.Raw = _RAW
    hash: msgspec.Raw = _RAW
    is_compressed: msgspec.Raw = _RAW
    page_number: msgspec.Raw = _RAW
    total_pages: msgspec.Raw = _RAW
    payments: msgspec.Raw = _RAW


class _Payment(msgspec.Struct, rename="pascal", gc=False):
    """[assume] one payment: its code, id, amount (read exactly), status and scope."""

    merchant_unique_code: Any = None
    payment_id: Any = None
    amount: Decimal | None = None
    status: Any = None
    scope: Any = None


def _camel(documented: type[T]) -> type[T]:
    """The same struct under camelCase names (``bulkPaymentId``), as ASP.NET may write them."""
    fields = [(f.name, f.type, f.default) for f in msgspec.structs.fields(documented)]
    return cast(type[T], msgspec.defstruct(f"{documented.__name__}Camel", fields,
                                           rename="camel", gc=False))


_HEADS = (msgspec.json.Decoder(_Head), msgspec.json.Decoder(_camel(_Head)))
_PAYMENT_LISTS = (msgspec.json.Decoder(list[_Payment]),
                  msgspec.json.Decoder(GenericAlias(list, (_camel(_Payment),))))
_VALUE = msgspec.json.Decoder(float_hook=Decimal)


@dataclass(frozen=True, slots=True)
class CallbackHead:
    """What the Hash covers and the page's place, with its payments still undecoded."""

    bulk_payment_id: str
    merchant_unique_code: str
    hash: str
    page_number: int
    total_pages: int
    payments: msgspec.Raw


# One payment as stored: [payment code, payment id, amount, status, scope] (None where Paywall
# did not say). A list, not an object per payment: pages carry 1,000 payments and the
# receiver's speed matters.
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


def _value(raw: msgspec.Raw) -> Any:
    """A head field's decoded value; None when absent."""
    if len(raw) > MAX_HEAD_VALUE_BYTES:
        raise MalformedCallback(f"a value of {len(raw)} bytes is not a callback's field")
    return _VALUE.decode(raw) if len(raw) else None


def _page_count(value: Any, name: str) -> int:
    number = whole_number(value)
    if number is None or number < 1:
        raise MalformedCallback(f"{name} must be a whole number of at least 1")
    return number


def _head_fields(found: _Head) -> CallbackHead:
    bulk_id = operation_id(_value(found.bulk_payment_id))
    if bulk_id is None:
        raise MalformedCallback("BulkPaymentId must be a number or an id of 1 to 64 characters")
    code = _value(found.merchant_unique_code)
    if not (isinstance(code, str) and 0 < len(code) <= MAX_CODE_LENGTH and code.isprintable()):
        raise MalformedCallback("MerchantUniqueCode must be text of 1 to 200 characters")
    given_hash = _value(found.hash)
    if not (isinstance(given_hash, str) and len(given_hash) <= MAX_HASH_LENGTH):
        raise MalformedCallback("Hash must be a string of at most 128 characters")
    if _value(found.is_compressed) is True:
        # The compression algorithm is undocumented: refuse rather than guess.
        raise MalformedCallback("compressed callbacks are not supported")
    page_number, total_pages = _value(found.page_number), _value(found.total_pages)
    page_number = 1 if page_number is None else _page_count(page_number, "PageNumber")
    total_pages = 1 if total_pages is None else _page_count(total_pages, "TotalPages")
    if page_number > total_pages:
        raise MalformedCallback("PageNumber is beyond TotalPages")
    return CallbackHead(bulk_id, code, given_hash, page_number, total_pages, found.payments)


def read_head(raw: bytes) -> CallbackHead:
    """The head of the page in ``raw``; :class:`MalformedCallback` for anything unreadable."""
    try:
        found = _HEADS[0].decode(raw)
        if not len(found.bulk_payment_id):
            found = _HEADS[1].decode(raw)  # no documented name: perhaps all in camelCase
        return _head_fields(found)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedCallback(f"body is not a callback page ({exc})") from exc
    except RecursionError as exc:
        raise MalformedCallback("body is nested too deep") from exc


def expected_hash(key: bytes, bulk_payment_id: str, merchant_unique_code: str) -> str:
    message = key + f"###{bulk_payment_id}###{merchant_unique_code}".encode()
    return hashlib.sha256(message).hexdigest()


def hash_matches(head: CallbackHead | CallbackPage, keys: list[bytes]) -> bool:
    """True when the page's Hash matches any configured key; every key is always compared."""
    given = head.hash.strip().lower().encode()
    matched = False
    for key in keys:
        wanted = expected_hash(key, head.bulk_payment_id, head.merchant_unique_code).encode()
        matched |= hmac.compare_digest(given, wanted)
    return matched


def read_page(head: CallbackHead) -> CallbackPage:
    """The verified page with its payments; :class:`MalformedCallback` if they are unreadable."""
    if len(head.payments) > MAX_PAYMENTS_BYTES:
        raise MalformedCallback(f"Payments take more than {MAX_PAYMENTS_BYTES} bytes: more than "
                                f"a page of {MAX_PAGE_PAYMENTS} payments")
    items: list[_Payment] = []
    absent = not len(head.payments) or (len(head.payments) == 4 and
                                        bytes(head.payments) == b"null")
    if not absent:
        try:
            items = _PAYMENT_LISTS[0].decode(head.payments)
            if items and items[0] == _Payment():  # no documented name: perhaps camelCase
                items = _PAYMENT_LISTS[1].decode(head.payments)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise MalformedCallback(f"Payments is not a list of payments ({exc})") from exc
        except RecursionError as exc:
            raise MalformedCallback("Payments is nested too deep") from exc
    if len(items) > MAX_PAGE_PAYMENTS:
        raise MalformedCallback(f"a page holds at most {MAX_PAGE_PAYMENTS} payments")
    rows, totals = _payments(items)
    return CallbackPage(head.bulk_payment_id, head.merchant_unique_code, head.hash,
                        head.page_number, head.total_pages, rows, totals)


def parse_callback(raw: bytes) -> CallbackPage:
    """Head and payments at once, with no Hash check: for tools and tests, never the receiver."""
    return read_page(read_head(raw))


def _payments(items: list[_Payment]) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """Validate every payment and sum them per scope and status, in one pass.

    This is the receiver's hot loop (1,000 payments a page), hence the plain lists and the
    amounts' decimal places checked once, on their sum (a sum of amounts with at most two places
    has at most two places, and one with more always shows it). A payment whose Status or Amount
    is missing is not a result yet (pending); one whose Scope is missing or unknown is counted
    under ``""``, the scope of the operation the page belongs to.
    """
    rows: list[Row] = []
    sums: dict[tuple[str, int | None], list[Any]] = {}
    for index, item in enumerate(items):
        code = item.merchant_unique_code
        if code is not None:
            code = code if type(code) is str else str(code)
            if len(code) > MAX_CODE_LENGTH:
                raise MalformedCallback(f"Payments[{index}].MerchantUniqueCode is not a code")
        payment_id = item.payment_id
        if type(payment_id) is not int and payment_id is not None:
            payment_id = operation_id(payment_id)
            if payment_id is None:
                raise MalformedCallback(f"Payments[{index}].PaymentId is not an id")
        amount = item.amount
        if amount is not None and not (amount.is_finite() and 0 <= amount <= MAX_AMOUNT):
            raise MalformedCallback(f"Payments[{index}].Amount is out of range")
        status = item.status
        if type(status) is not int:
            # A status we cannot read, or a result without its amount, is not counted yet.
            status = whole_number(status)
        if amount is None:
            status = None
        said = item.scope
        kind = said if said == "cancel" or said == "refund" else scope(said)
        rows.append([code, payment_id, amount, status, kind])
        acc = sums.get((kind, status))
        if acc is None:
            sums[(kind, status)] = [1, Decimal(0) if amount is None else amount]
        else:
            acc[0] += 1
            if amount is not None:
                acc[1] += amount
    return rows, _totals(sums, items)


def _totals(sums: dict[tuple[str, int | None], list[Any]],
            items: list[_Payment]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for (kind, status), (count, amount) in sums.items():
        if amount.as_tuple().exponent < -2:
            _find_bad_amount(items)
        t = totals.setdefault(kind, {"count": 0, "amount": Decimal(0), "ok_count": 0,
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
    return totals


def _find_bad_amount(items: list[_Payment]) -> None:
    for index, item in enumerate(items):
        if item.amount is not None and item.amount != item.amount.quantize(CENT):
            raise MalformedCallback(f"Payments[{index}].Amount is not an amount with 2 places")
