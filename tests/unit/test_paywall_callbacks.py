"""Paywall callback pages: parsing and the constant-time hash check."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.providers.paywall_callbacks import (
    MalformedCallback,
    expected_hash,
    hash_matches,
    parse_callback,
)

KEY = b"hash-key"


def page(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Type": "BulkCancel", "BulkPaymentId": 81234, "MerchantUniqueCode": "bulk-1",
        "Hash": expected_hash(KEY, "81234", "bulk-1"), "IsCompressed": False,
        "PageNumber": 1, "TotalPages": 2, "HasMorePages": True,
        "Payments": [
            {"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 10.25, "Status": 4,
             "Scope": "cancel", "ErrorCode": 0, "ErrorMessage": None},
            {"MerchantUniqueCode": "p2", "PaymentId": 2, "Amount": 5, "Status": 5,
             "Scope": "cancel", "ErrorCode": 1, "ErrorMessage": "x"},
        ],
    }
    body.update(overrides)
    return body


def test_hash_is_sha256_of_key_id_and_code() -> None:
    """Hash = sha256("{key}###{BulkPaymentId}###{MerchantUniqueCode}"), lowercase hex."""
    assert expected_hash(KEY, "81234", "bulk-1") == hashlib.sha256(
        b"hash-key###81234###bulk-1").hexdigest()


def test_any_configured_key_may_match() -> None:
    """A page signed with the second configured key is accepted; an unknown key is not."""
    parsed = parse_callback(json.dumps(page()).encode())
    assert hash_matches(parsed, [b"old-key", KEY])
    assert not hash_matches(parsed, [b"old-key", b"other"])


def test_trailing_zeros_are_still_two_places() -> None:
    """10.250 is 10.25: accepted, like any amount whose value has at most two places."""
    body = page(Payments=[{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": "x",
                           "Status": 4, "Scope": "cancel"}])
    raw = json.dumps(body).encode().replace(b'"x"', b"10.250")
    assert parse_callback(raw).totals()["cancel"]["amount"] == "10.250"


def test_a_page_parses_with_exact_amounts_and_totals() -> None:
    """Amounts are Decimal; totals split successes and failures per scope."""
    parsed = parse_callback(json.dumps(page()).encode())
    assert (parsed.page_number, parsed.total_pages, parsed.bulk_payment_id) == (1, 2, "81234")
    assert parsed.totals() == {"cancel": {"count": 2, "amount": "15.25", "ok_count": 1,
                                          "ok_amount": "10.25", "failed_count": 1,
                                          "pending_count": 0}}


@pytest.mark.parametrize("change", [
    {"BulkPaymentId": None}, {"MerchantUniqueCode": ""}, {"Hash": 5}, {"PageNumber": 3},
    {"PageNumber": 0}, {"Payments": "x"}, {"Payments": [{"Amount": 1}]},
    {"Payments": [{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": "1e999", "Status": 4}]},
    {"Payments": [{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": 1.001, "Status": 4}]},
    {"IsCompressed": True},
    {"Payments": [{"MerchantUniqueCode": f"p{i}", "PaymentId": i, "Amount": 0.005, "Status": 4}
                  for i in range(2)]},
])
def test_malformed_pages_are_refused(change: dict[str, Any]) -> None:
    """Missing or ill-typed fields, impossible pages and garbage amounts are malformed."""
    with pytest.raises(MalformedCallback):
        parse_callback(json.dumps(page(**change)).encode())


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    """Any body either parses or raises MalformedCallback, nothing else."""
    with contextlib.suppress(MalformedCallback):
        parse_callback(raw)
