"""Paywall's query endpoint and what the documents leave open, as properties: page after page
until a short one, totals present or not, numbers as ints, floats or strings, extra fields,
assumed fields missing or renamed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.providers import paywall_api as make_api
from tests.fakes.providers import paywall_envelope as envelope
from tests.seeds import example_body
from worker.providers import errors
from worker.providers.calls import NullObserver
from worker.providers.paywall.adapter import MAX_QUERY_PAGES, Accepted

CENTS = st.integers(min_value=0, max_value=10**15 - 1)
SPELLINGS = ("int", "float", "string")


def spelled(cents: int, how: str) -> str:
    """An amount's JSON text: 10, 10.5 or "10.50" (never through a Python float)."""
    amount = Decimal(cents) / 100
    if how == "int" and cents % 100 == 0:
        return str(cents // 100)
    if how == "string":
        return json.dumps(f"{amount:.2f}")
    return format(amount.normalize(), "f") if amount else "0.0"


def rows_json(rows: list[tuple[int, str, str]]) -> list[str]:
    """Query rows as JSON texts, amounts spelled as asked."""
    return [f'{{"MerchantUniqueCode": "p{i}", "PaymentId": {i}, "Amount": {text}, '
            f'"Status": 4, "Scope": "{kind}", "TrackingCode": null}}'
            for i, (_cents, kind, text) in enumerate(rows)]


def paged(rows: list[str], totals: str | None, asked: list[int]) -> Callable[..., httpx.Response]:
    """A query endpoint serving `rows` at the page size asked, with or without totals."""

    def handler(request: httpx.Request) -> httpx.Response:
        size, number = int(request.url.params["pageSize"]), int(request.url.params["pageNumber"])
        asked.append(number)
        page = rows[(number - 1) * size: number * size]
        head = "" if totals is None else (
            f'"{totals}": {len(rows)}, "TotalPages": {-(-len(rows) // size)}, "PageNumber": '
            f'{number}, ')
        body = f'{{{head}"Payments": [{", ".join(page)}]}}'
        text = json.dumps(envelope(None)).replace('"Body": null', f'"Body": {body}')
        return httpx.Response(200, content=text.encode())

    return handler


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(CENTS, st.sampled_from(["sale", "cancel", "refund"]),
                            st.sampled_from(SPELLINGS)), max_size=60),
    page_size=st.integers(min_value=1, max_value=25),
    totals=st.sampled_from([None, "TotalPaymentCount", "TotalCount", "totalCount"]),
)
def test_query_all_reads_every_row_once_whatever_the_paging(
        rows: list[tuple[int, str, str]], page_size: int, totals: str | None) -> None:
    """Every row once, in order, exact; pages until a short one; totals present or not alike."""
    texts = [(cents, kind, spelled(cents, how)) for cents, kind, how in rows]
    asked: list[int] = []
    api = make_api(paged(rows_json(texts), totals, asked))

    found = list(api.query_all("bulk-1", NullObserver(), page_size=page_size))

    assert [(r.amount, r.scope, r.status) for r in found] == [
        (Decimal(cents) / 100, kind, 4) for cents, kind, _text in texts]
    assert asked == list(range(1, len(rows) // page_size + 2))


def test_a_page_answered_twice_stops_the_read() -> None:
    """A Paywall that ignores pageNumber (the same full page again) is an error, not a loop."""
    rows = rows_json([(100, "cancel", "1")] * 2)

    def same_page(request: httpx.Request) -> httpx.Response:
        body = json.loads(f'{{"Payments": [{", ".join(rows)}]}}')
        return httpx.Response(200, json=envelope(body))

    with pytest.raises(errors.MalformedResponse):
        list(make_api(same_page).query_all("bulk-1", NullObserver(), page_size=2))


def test_the_read_is_bounded_in_pages() -> None:
    """Endless full pages end with an error after max_pages calls (MAX_QUERY_PAGES by default)."""
    asked: list[int] = []

    def endless(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["pageNumber"])
        asked.append(number)
        row = {"MerchantUniqueCode": "p", "PaymentId": number, "Amount": 1, "Status": 4,
               "Scope": "cancel"}
        return httpx.Response(200, json=envelope({"Payments": [row]}))

    with pytest.raises(errors.MalformedResponse):
        list(make_api(endless).query_all("bulk-1", NullObserver(), page_size=1, max_pages=7))
    assert len(asked) == 7 and MAX_QUERY_PAGES == 10_000


@pytest.mark.parametrize("row", [
    {"merchantUniqueCode": "p", "paymentId": 1, "amount": "2.50", "status": "4", "scope": "CANCEL"},
    {"Amount": 2.5, "Status": 4, "Scope": "Cancel"},
])
def test_rows_in_camel_case_or_without_assumed_fields_are_read(row: dict[str, Any]) -> None:
    """A row needs only its Scope, Status and Amount; names in any case, numbers as strings."""
    api = make_api(lambda request: httpx.Response(200, json=envelope({"Payments": [row]})))
    (found,) = api.query_all("b", NullObserver())
    assert (found.amount, found.status, found.scope) == (Decimal("2.50"), 4, "cancel")


def test_a_row_with_unreadable_fields_is_kept_as_unknown() -> None:
    """A garbled amount or status, or a scope we do not know, is None or "", not an error."""
    row = {"Amount": "ten", "Status": "done", "Scope": 2}
    api = make_api(lambda request: httpx.Response(200, json=envelope({"Payments": [row]})))
    (found,) = api.query_all("b", NullObserver())
    assert (found.amount, found.status, found.scope) == (None, None, "")


def test_a_query_without_a_list_of_rows_is_malformed() -> None:
    """No rows at all is an answer we cannot read (retried), not an empty result."""
    api = make_api(lambda request: httpx.Response(200, json=envelope({"TotalCount": 3})))
    with pytest.raises(errors.MalformedResponse) as caught:
        api.query_bulk("b", 1, NullObserver())
    assert not caught.value.ambiguous


# --- the cancel answer: seed 001 varied where the document leaves it open ---------------------


def cased(name: str, how: str) -> str:
    return {"pascal": name, "camel": name[0].lower() + name[1:], "lower": name.lower()}[how]


@settings(max_examples=80, deadline=None)
@given(
    bulk_id=st.integers(min_value=1, max_value=2**53),
    id_as=st.sampled_from(["int", "float", "string"]),
    count=st.one_of(st.none(), st.integers(min_value=0, max_value=150_000)),
    count_name=st.sampled_from(["TotalPaymentCount", "TotalCount"]),
    case=st.sampled_from(["pascal", "camel", "lower"]),
    extra=st.dictionaries(st.text(min_size=1, max_size=8).filter(
        lambda k: k.lower() not in {"result", "bulkpaymentid", "totalpaymentcount", "totalcount",
                                    "errorcode", "body"}),
        st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3),
    drop_envelope_extras=st.booleans(),
)
def test_seed_001_varied_is_still_queued(bulk_id: int, id_as: str, count: int | None,
                                         count_name: str, case: str, extra: dict[str, Any],
                                         drop_envelope_extras: bool) -> None:
    """Extra fields, count absent or renamed, other cases, id as number or text: still queued."""
    answer = example_body("001", having="Body")
    body: dict[str, Any] = {cased("Result", case): True, **extra}
    body[cased("BulkPaymentId", case)] = (
        bulk_id if id_as == "int" else f"{bulk_id}" if id_as == "string" else None)
    if count is not None:
        body[cased(count_name, case)] = count
    text = json.dumps({**({k: v for k, v in answer.items() if k in ("ErrorCode", "Result")}
                          if drop_envelope_extras else answer), "Body": body, **extra})
    if id_as == "float":
        text = text.replace(f'"{cased("BulkPaymentId", case)}": null',
                            f'"{cased("BulkPaymentId", case)}": {bulk_id}.0')

    result = make_api(lambda request: httpx.Response(200, content=text.encode())).cancel_bulk(
        "b", date(2024, 12, 12), NullObserver())

    assert result == Accepted(str(bulk_id), count)
