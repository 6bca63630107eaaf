"""Paywall callback pages: the head read first and cheaply, the constant-time hash check, then
the payments, read tolerantly."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tracemalloc
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.providers import CALLBACK_KEY as PAYWALL_KEY
from tests.fakes.providers import paywall_callback_page as paywall_page
from worker.providers.paywall.callbacks import (
    MAX_PAGE_PAYMENTS,
    MAX_PAYMENTS_BYTES,
    MalformedCallback,
    expected_hash,
    hash_matches,
    parse_callback,
    read_head,
    read_page,
)

SIXTEEN_MIB = 16 * 1024 * 1024


def parsed(body: dict[str, Any]) -> Any:
    return parse_callback(json.dumps(body).encode())


def forged(size: int, payment: str = '{"MerchantUniqueCode":"%d","PaymentId":%d,"Amount":1.5,'
                                      '"Status":4}') -> bytes:
    """A body of about `size` bytes: a valid head with a wrong Hash, then many payments."""
    head = ('{"BulkPaymentId":5,"MerchantUniqueCode":"bulk-1","Hash":"' + "0" * 64 +
            '","Payments":[')
    count = (size - len(head)) // (len(payment % (10**6, 10**6)) + 1)
    body = head + ",".join(payment % (i, i) for i in range(count)) + "]"
    return (body + " " * (size - len(body) - 1) + "}").encode()


def test_hash_is_sha256_of_key_id_and_code() -> None:
    """Hash = sha256("{key}###{BulkPaymentId}###{MerchantUniqueCode}"), lowercase hex."""
    assert expected_hash(PAYWALL_KEY, "81234", "bulk-1") == hashlib.sha256(
        b"hash-key###81234###bulk-1").hexdigest()


def test_any_configured_key_may_match() -> None:
    """A page signed with the second configured key is accepted; an unknown key is not."""
    head = read_head(json.dumps(paywall_page()).encode())
    assert hash_matches(head, [b"old-key", PAYWALL_KEY])
    assert not hash_matches(head, [b"old-key", b"other"])


def test_trailing_zeros_are_still_two_places() -> None:
    """10.250 is 10.25: accepted, like any amount whose value has at most two places."""
    body = paywall_page(Payments=[{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": "x",
                           "Status": 4, "Scope": "cancel"}])
    raw = json.dumps(body).encode().replace(b'"x"', b"10.250")
    assert parse_callback(raw).totals()["cancel"]["amount"] == "10.250"


def test_a_page_parses_with_exact_amounts_and_totals() -> None:
    """Amounts are Decimal; totals split successes and failures per scope."""
    found = parsed(paywall_page())
    assert (found.page_number, found.total_pages, found.bulk_payment_id) == (1, 2, "81234")
    assert found.totals() == {"cancel": {"count": 2, "amount": "15.25", "ok_count": 1,
                                         "ok_amount": "10.25", "failed_count": 1,
                                         "pending_count": 0}}


def test_the_head_is_read_without_decoding_the_payments() -> None:
    """Payments that would be refused do not stop the head: the Hash is checked first."""
    raw = json.dumps(paywall_page(Payments=[{"Amount": "ten"}])).encode()
    head = read_head(raw)
    assert (head.bulk_payment_id, head.merchant_unique_code) == ("81234", "bulk-1")
    with pytest.raises(MalformedCallback):
        read_page(head)


def test_a_forged_16_mib_body_costs_almost_nothing_before_its_hash_is_refused() -> None:
    """The head of a 16 MiB body is read allocating under 64 KiB, however many payments."""
    raw = forged(SIXTEEN_MIB)
    assert len(raw) == SIXTEEN_MIB
    tracemalloc.start()
    try:
        head = read_head(raw)
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not hash_matches(head, [PAYWALL_KEY])
    assert allocated < 64 * 1024, allocated


def test_camel_case_pages_read_the_same() -> None:
    """A page whose names are all camelCase (ASP.NET's default) reads like the documented one."""
    def camel(value: Any) -> Any:
        if isinstance(value, dict):
            return {k[0].lower() + k[1:]: camel(v) for k, v in value.items()}
        return [camel(v) for v in value] if isinstance(value, list) else value

    documented, cameled = parsed(paywall_page()), parsed(camel(paywall_page()))
    assert (cameled.bulk_payment_id, cameled.totals(), cameled.rows) == (
        documented.bulk_payment_id, documented.totals(), documented.rows)


def test_assumed_payment_fields_may_be_missing() -> None:
    """No Status or Amount: pending; no Scope: counted under ""; codes and ids optional."""
    found = parsed(paywall_page(Payments=[{"Amount": 1, "Status": 4},
                                          {"Status": 4, "Scope": "cancel"},
                                          {"Amount": "2.50", "Scope": "cancel"}]))
    assert found.totals() == {
        "": {"count": 1, "amount": "1", "ok_count": 1, "ok_amount": "1", "failed_count": 0,
             "pending_count": 0},
        "cancel": {"count": 2, "amount": "2.50", "ok_count": 0, "ok_amount": "0",
                   "failed_count": 0, "pending_count": 2}}


@pytest.mark.parametrize("change", [
    {"BulkPaymentId": None}, {"MerchantUniqueCode": ""}, {"Hash": 5}, {"PageNumber": 3},
    {"PageNumber": 0}, {"Payments": "x"}, {"Payments": [1]},
    {"Payments": [{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": "1e999", "Status": 4}]},
    {"Payments": [{"MerchantUniqueCode": "p", "PaymentId": 1, "Amount": 1.001, "Status": 4}]},
    {"Payments": [{"Amount": "NaN", "Status": 4}]}, {"Payments": [{"Amount": -1, "Status": 4}]},
    {"Payments": [{"Amount": "ten", "Status": 4}]},
    {"IsCompressed": True},
    {"Payments": [{"MerchantUniqueCode": f"p{i}", "PaymentId": i, "Amount": 0.005, "Status": 4}
                  for i in range(2)]},
])
def test_malformed_pages_are_refused(change: dict[str, Any]) -> None:
    """Missing or ill-typed head fields, impossible pages and garbage amounts are malformed."""
    with pytest.raises(MalformedCallback):
        parsed(paywall_page(**change))


@pytest.mark.parametrize("change", [
    {"BulkPaymentId": "9" * 65}, {"BulkPaymentId": "5\nINFO forged log line"},
    {"MerchantUniqueCode": "b" * 201}, {"MerchantUniqueCode": "bulk\r\n"}, {"Hash": "a" * 129},
    {"Hash": "a" * 5000}, {"Payments": [{"MerchantUniqueCode": "p" * 201, "Amount": 1}]},
    {"Payments": [{"PaymentId": "1" * 65, "Amount": 1}]},
])
def test_ids_too_long_or_with_control_characters_never_reach_logs_or_the_ledger(
        change: dict[str, Any]) -> None:
    """Ids are length-checked (and head ids must be printable) before anything uses them."""
    with pytest.raises(MalformedCallback):
        parsed(paywall_page(**change))


@pytest.mark.parametrize("field", ["BulkPaymentId", "PageNumber", "TotalPages"])
@pytest.mark.parametrize("number", [b"1e999999999", b'"1e999999999"', b"9" * 4000])
def test_numbers_too_large_for_an_id_or_a_count_are_refused_at_once(field: str,
                                                                     number: bytes) -> None:
    """1e999999999 in the head is refused at once (as text, a BulkPaymentId is just an id)."""
    raw = json.dumps(paywall_page(**{field: "@"})).encode().replace(b'"@"', number)
    if field == "BulkPaymentId" and number.startswith(b'"'):
        assert read_head(raw).bulk_payment_id == "1e999999999"
        return
    with pytest.raises(MalformedCallback):
        read_head(raw)


def test_more_than_a_page_of_payments_is_refused() -> None:
    """1,001 payments, or a payment list over its byte bound, is not one page."""
    many = [{"Amount": 1, "Status": 4, "Scope": "cancel"}] * (MAX_PAGE_PAYMENTS + 1)
    with pytest.raises(MalformedCallback):
        parsed(paywall_page(Payments=many))
    bulky = [{"Amount": 1, "Status": 4, "Note": "x" * (MAX_PAYMENTS_BYTES // 10)}] * 11
    with pytest.raises(MalformedCallback):
        parsed(paywall_page(Payments=bulky))


AMOUNTS = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=80, deadline=None)
@given(
    payments=st.lists(st.tuples(AMOUNTS, st.sampled_from([4, 5]),
                                st.sampled_from(["int", "float", "string"])), max_size=30),
    status_as_text=st.booleans(),
    id_as_text=st.booleans(),
    extra=st.dictionaries(st.sampled_from(["TrackingCode", "PaymentGatewayName", "BankErrorCode"]),
                          st.one_of(st.none(), st.text(max_size=8), st.integers()), max_size=3),
)
def test_pages_varied_where_the_documents_are_silent_total_the_same(
        payments: list[tuple[int, int, str]], status_as_text: bool, id_as_text: bool,
        extra: dict[str, Any]) -> None:
    """Amounts as 10, 10.0 or "10.00", numbers as text, extra fields: the same exact totals."""
    items, texts = [], []
    for index, (cents, status, how) in enumerate(payments):
        amount = Decimal(cents) / 100
        text = (json.dumps(f"{amount:.2f}") if how == "string" else
                str(cents // 100) if how == "int" and cents % 100 == 0 else f"{amount:.2f}")
        texts.append(text)
        items.append({"MerchantUniqueCode": f"p{index}",
                      "PaymentId": str(index) if id_as_text else index, "Amount": f"@{index}@",
                      "Status": str(status) if status_as_text else status, "Scope": "cancel",
                      **extra})
    raw = json.dumps(paywall_page(Payments=items, **extra))
    for index, text in enumerate(texts):
        raw = raw.replace(f'"@{index}@"', text)

    found = parse_callback(raw.encode())

    ok = [Decimal(c) / 100 for c, status, _how in payments if status == 4]
    if payments:
        totals = found.scope_totals["cancel"]
        assert (totals["count"], totals["ok_count"], totals["failed_count"]) == (
            len(payments), len(ok), len(payments) - len(ok))
        assert totals["ok_amount"] == sum(ok, Decimal(0))
        assert totals["amount"] == sum((Decimal(c) / 100 for c, _s, _h in payments), Decimal(0))
    else:
        assert found.scope_totals == {}


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    """Any body either parses or raises MalformedCallback, nothing else."""
    with contextlib.suppress(MalformedCallback):
        parse_callback(raw)
