"""The sandbox's Paywall emulation: API rules through Flask's test client, callbacks on the wire."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import RunningSandbox, create_app, start_in_thread
from tests.seeds import example_body
from tests.support import Clock

# 09:00 UTC is 12:00 in Istanbul: the middle of 2026-11-21 there.
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
DAY, NEXT_DAY = "2026-11-21", "2026-11-22"
PUBLIC = {"apikeypublic": "sandbox-public-key", "apiclientpublic": "sandbox-public-client"}
PRIVATE = {"apikeyprivate": "sandbox-private-key", "apiclientprivate": "sandbox-private-client"}
BULK = "/paywall/api/paywall/payment/bulk"
PATHS = {
    "cancel_bulk": f"{BULK}/payment/cancel",
    "refund_bulk": f"{BULK}/payment/refund",
    "send_callback": f"{BULK}/send/callback",
    "cancel_payment": "/paywall-private/api/paywall/private/cancel",
    "refund_payment": "/paywall-private/api/paywall/private/refund",
}
HASH_KEY = "sandbox-hash-key"
ENVELOPE = ["ErrorCodeType", "ErrorMessage", "ErrorCode", "Result", "Message", "Body"]


Client = FlaskClient | httpx.Client


def body_of(response: Any) -> Any:
    """The JSON body of a Flask test response or an httpx response."""
    return response.json() if isinstance(response, httpx.Response) else response.get_json()


def seed(client: Client, **body: Any) -> dict[str, Any]:
    body.setdefault("date", DAY)
    response = client.post("/_sandbox/paywall/bulks", json=body)
    assert response.status_code == 201, body_of(response)
    seeded: dict[str, Any] = body_of(response)
    return seeded


def seed_payment(client: Client, **body: Any) -> dict[str, Any]:
    body.setdefault("date", DAY)
    body.setdefault("amount", "25.50")
    response = client.post("/_sandbox/paywall/payments", json=body)
    assert response.status_code == 201, body_of(response)
    seeded: dict[str, Any] = body_of(response)
    return seeded


def settings_(client: Client, **changes: Any) -> None:
    response = client.post("/_sandbox/settings", json={"paywall": changes})
    assert response.status_code == 200, body_of(response)


def call(client: Client, operation: str, code: str, day: str = DAY, **kwargs: Any) -> Any:
    """POST an operation with the right headers; the parsed envelope."""
    headers = PRIVATE if operation.endswith("_payment") else PUBLIC
    payload = {"Date": day, "MerchantUniqueCode": code}
    response = client.post(PATHS[operation], json=payload, headers=headers, **kwargs)
    assert response.status_code == 200, body_of(response)
    return body_of(response)


def query(client: Client, code: str, size: int = 1000, number: int = 1) -> Any:
    params = f"merchantuniquecode={code}&pageSize={size}&pageNumber={number}"
    return body_of(client.get(f"{BULK}/payment/query?{params}", headers=PUBLIC))


def all_rows(client: Client, code: str, size: int) -> list[dict[str, Any]]:
    """Page after page until one comes back shorter than `size` (no totals needed)."""
    rows: list[dict[str, Any]] = []
    for number in range(1, 10_000):
        page = query(client, code, size, number)["Body"]["Payments"]
        rows.extend(page)
        if len(page) < size:
            return rows
    raise AssertionError("the query never ended")


def summary(client: Client, code: str) -> Any:
    url = f"{BULK}/payment/query/summary?merchantuniquecode={code}"
    return body_of(client.get(url, headers=PUBLIC))["Body"]


def effects(client: Client) -> dict[str, int]:
    found: dict[str, int] = body_of(client.get("/_sandbox/effects?provider=paywall"))["effects"]
    return found


def error_code(answer: Any) -> int:
    assert answer["Result"] is False
    assert answer["Body"] is None
    code: int = answer["ErrorCode"]
    return code


def expected_hash(bulk_payment_id: int, code: str, key: str = HASH_KEY) -> str:
    return hashlib.sha256(f"{key}###{bulk_payment_id}###{code}".encode()).hexdigest()


# --- bulk cancel and refund: the same-day rule and the refusals ----------------------------


def test_cancel_on_the_payment_day_answers_the_envelope_with_a_new_id(client: FlaskClient) -> None:
    """A same-day cancel is queued: success envelope, a fresh int BulkPaymentId, the count."""
    seed(client, code="B1", count=3)

    response = client.post(
        PATHS["cancel_bulk"], json={"Date": DAY, "MerchantUniqueCode": "B1"}, headers=PUBLIC
    )

    answer = response.get_json()
    documented = example_body("001", having="Body")
    assert response.status_code == 200
    assert list(answer) == list(documented) == ENVELOPE
    assert {k: v for k, v in answer.items() if k != "Body"} == {
        k: v for k, v in documented.items() if k != "Body"}
    assert list(answer["Body"]) == list(documented["Body"])
    assert answer["Body"]["Result"] is True
    assert isinstance(answer["Body"]["BulkPaymentId"], int)
    assert answer["Body"]["TotalPaymentCount"] == 3


def test_each_operation_gets_its_own_bulk_payment_id(client: FlaskClient) -> None:
    """Two bulks cancelled answer two different BulkPaymentIds, shown by the control API."""
    seed(client, code="B1")
    seed(client, code="B2")

    first = call(client, "cancel_bulk", "B1")["Body"]["BulkPaymentId"]
    second = call(client, "cancel_bulk", "B2")["Body"]["BulkPaymentId"]

    assert first != second
    shown = client.get("/_sandbox/paywall/bulks/B1").get_json()
    assert [op["bulk_payment_id"] for op in shown["operations"]] == [first]
    assert shown["operations"][0]["kind"] == "cancel"


def test_cancel_after_the_payment_day_is_refused_and_refund_is_accepted(
    client: FlaskClient,
) -> None:
    """The day after, a cancel answers 269 (no effect) and a refund is accepted."""
    seed(client, code="B1", count=2)
    settings_(client, today=NEXT_DAY)

    cancel = call(client, "cancel_bulk", "B1")
    refund = call(client, "refund_bulk", "B1")

    assert error_code(cancel) == 269
    assert refund["Body"]["TotalPaymentCount"] == 2
    assert effects(client) == {
        "paywall:refund_bulk:B1": 1,
        "paywall:refund_payment:B1-000001": 1,
        "paywall:refund_payment:B1-000002": 1,
    }


def test_refund_on_the_payment_day_is_refused_269(client: FlaskClient) -> None:
    """A refund on the payment day (or before it) answers 269 and changes nothing."""
    seed(client, code="B1")

    answer = call(client, "refund_bulk", "B1")

    assert error_code(answer) == 269
    assert effects(client) == {}
    assert summary(client, "B1")["Refund"] == {"Count": 0, "Amount": 0.0, "FailedCount": 0}


def test_the_day_is_the_one_in_the_paywall_timezone(client: FlaskClient, clock: Clock) -> None:
    """At 21:30 UTC it is already the next day in Istanbul; with timezone UTC it is not."""
    seed(client, code="B1")
    clock.now = datetime(2026, 11, 21, 21, 30, tzinfo=UTC)

    in_istanbul = call(client, "cancel_bulk", "B1")
    settings_(client, timezone="UTC")
    in_utc = call(client, "cancel_bulk", "B1")

    assert error_code(in_istanbul) == 269
    assert in_utc["Result"] is True


def test_a_seeded_bulk_is_dated_today_in_the_paywall_timezone(
    client: FlaskClient, clock: Clock
) -> None:
    """Without a date, a bulk is made "today" as the Paywall timezone sees it."""
    clock.now = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)

    bulk = client.post("/_sandbox/paywall/bulks", json={}).get_json()

    assert bulk["date"] == NEXT_DAY


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        ("cancel_bulk", "cancel_bulk", 94),
        ("refund_bulk", "refund_bulk", 93),
        ("cancel_bulk", "refund_bulk", 97),
        ("refund_bulk", "cancel_bulk", 97),
    ],
)
def test_a_second_operation_is_refused_and_takes_effect_once(
    client: FlaskClient, first: str, second: str, code: int
) -> None:
    """Cancelled or refunded once, a bulk refuses the next operation with 94, 93 or 97."""
    seed(client, code="B1", count=2)
    if first == "refund_bulk":
        settings_(client, today=NEXT_DAY)
    assert call(client, first, "B1")["Result"] is True
    if second == "refund_bulk":
        settings_(client, today=NEXT_DAY)

    answer = call(client, second, "B1")

    assert error_code(answer) == code
    kind = first.split("_")[0]
    assert effects(client) == {
        f"paywall:{kind}_bulk:B1": 1,
        f"paywall:{kind}_payment:B1-000001": 1,
        f"paywall:{kind}_payment:B1-000002": 1,
    }


@pytest.mark.parametrize(("code", "day"), [("NOPE", DAY), ("B1", NEXT_DAY), ("B1-000001", DAY)])
def test_unknown_code_or_another_date_answers_56(client: FlaskClient, code: str, day: str) -> None:
    """An unknown bulk, a Date other than its payment day, or a payment code: 56."""
    seed(client, code="B1")

    assert error_code(call(client, "cancel_bulk", code, day)) == 56


@pytest.mark.parametrize(
    "payload",
    [
        {"MerchantUniqueCode": "B1"},
        {"Date": "21.11.2026", "MerchantUniqueCode": "B1"},
        {"Date": "2026-11-21T00:00:00", "MerchantUniqueCode": "B1"},
        {"Date": DAY},
        {"Date": DAY, "MerchantUniqueCode": 7},
        ["B1"],
    ],
)
def test_invalid_request_bodies_answer_invalid_data(client: FlaskClient, payload: Any) -> None:
    """A missing or malformed Date or code is ErrorCode 2, still HTTP 200."""
    seed(client, code="B1")

    response = client.post(PATHS["cancel_bulk"], json=payload, headers=PUBLIC)

    assert response.status_code == 200
    assert error_code(response.get_json()) == 2


def test_a_body_that_is_not_json_answers_invalid_data(client: FlaskClient) -> None:
    """Garbage instead of JSON is ErrorCode 2, not a crash."""
    response = client.post(
        PATHS["cancel_bulk"], data="{Date", content_type="application/json", headers=PUBLIC
    )

    assert error_code(response.get_json()) == 2


@pytest.mark.parametrize("operation", ["cancel_bulk", "cancel_payment", "send_callback"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"apikeypublic": "sandbox-public-key"},
        {"apikeypublic": "wrong", "apiclientpublic": "sandbox-public-client"},
        {"apikeyprivate": "sandbox-private-key", "apiclientprivate": "wrong"},
    ],
)
def test_missing_or_wrong_api_headers_answer_401(
    client: FlaskClient, operation: str, headers: dict[str, str]
) -> None:
    """Each API wants its own pair of headers; anything else is HTTP 401, ErrorCode 401."""
    seed(client, code="B1")
    if operation == "cancel_payment" and "apikeyprivate" in headers:
        headers = {**headers, **PUBLIC}  # the public pair does not open the private API

    response = client.post(
        PATHS[operation], json={"Date": DAY, "MerchantUniqueCode": "B1-000001"}, headers=headers
    )

    assert response.status_code == 401
    assert error_code(response.get_json()) == 401
    assert effects(client) == {}


def test_queries_want_the_public_headers(client: FlaskClient) -> None:
    """The query endpoints answer 401 without the public headers."""
    seed(client, code="B1")

    response = client.get(f"{BULK}/payment/query?merchantuniquecode=B1", headers=PRIVATE)
    totals = client.get(f"{BULK}/payment/query/summary?merchantuniquecode=B1")

    assert (response.status_code, totals.status_code) == (401, 401)


def test_settings_change_the_api_headers_and_mask_the_secrets(client: FlaskClient) -> None:
    """New header values apply at once; keys and the hash key are never shown."""
    seed(client, code="B1")
    response = client.post(
        "/_sandbox/settings",
        json={"paywall": {"apikeypublic": "k2", "apiclientpublic": "c2", "hash_key": "h2"}},
    )

    shown = response.get_json()["paywall"]
    old = client.post(
        PATHS["cancel_bulk"], json={"Date": DAY, "MerchantUniqueCode": "B1"}, headers=PUBLIC
    )
    new = client.post(
        PATHS["cancel_bulk"],
        json={"Date": DAY, "MerchantUniqueCode": "B1"},
        headers={"apikeypublic": "k2", "apiclientpublic": "c2"},
    )

    assert (shown["apikeypublic"], shown["apiclientpublic"], shown["hash_key"]) == (
        "***",
        "c2",
        "***",
    )
    assert shown["apikeyprivate"] == "***"
    assert old.status_code == 401
    assert new.get_json()["Result"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Mars/Olympus"},
        {"today": "tomorrow"},
        {"page_size": 1001},
        {"page_size": 0},
        {"order": "sideways"},
        {"retries": -1},
        {"duplicate_pages": [0]},
        {"bad_hash": "yes"},
        {"callback_url": "ftp://x"},
        {"apikeypublic": ""},
        {"query_totals": "Total"},
        {"colour": "red"},
    ],
)
def test_invalid_settings_are_refused_and_change_nothing(
    client: FlaskClient, changes: dict[str, Any]
) -> None:
    """A setting the sandbox cannot honour answers 400; the others are left as they were."""
    response = client.post("/_sandbox/settings", json={"paywall": {"retries": 9, **changes}})

    assert response.status_code == 400
    assert client.get("/_sandbox/settings").get_json()["paywall"]["retries"] == 3


# --- payments that fail, single payments, effects -------------------------------------------


def test_payments_marked_to_fail_fail_and_are_not_effects(client: FlaskClient) -> None:
    """fail_count: the first payments come back Status 5; only the others count as effects."""
    seed(client, code="B1", count=4, amount_each="2.50", fail_count=1)

    call(client, "cancel_bulk", "B1")

    rows = [r for r in query(client, "B1")["Body"]["Payments"] if r["Scope"] == "cancel"]
    assert [(r["MerchantUniqueCode"], r["Status"]) for r in rows] == [
        ("B1-000001", 5), ("B1-000002", 4), ("B1-000003", 4), ("B1-000004", 4),
    ]  # fmt: skip
    assert summary(client, "B1")["Cancel"] == {"Count": 3, "Amount": 7.5, "FailedCount": 1}
    assert "paywall:cancel_payment:B1-000001" not in effects(client)
    assert effects(client)["paywall:cancel_payment:B1-000002"] == 1


def test_fail_names_payments_by_code(client: FlaskClient) -> None:
    """fail: the named payments fail, the rest succeed."""
    seed(client, code="B1", payments=[{"code": "a", "amount": "1"}, {"code": "b", "amount": "2"}],
         fail=["b"])  # fmt: skip

    call(client, "cancel_bulk", "B1")

    assert summary(client, "B1")["Cancel"] == {"Count": 1, "Amount": 1.0, "FailedCount": 1}


def test_private_cancel_of_a_standalone_payment(client: FlaskClient) -> None:
    """A payment seeded alone is cancelled by its own code through the private API, once."""
    payment = seed_payment(client, code="P1", amount="25.50")

    answer = call(client, "cancel_payment", "P1")
    again = call(client, "cancel_payment", "P1")

    assert answer["Body"]["TotalPaymentCount"] == 1
    assert isinstance(answer["Body"]["BulkPaymentId"], int)
    assert error_code(again) == 94
    assert effects(client) == {"paywall:cancel_payment:P1": 1}
    rows = query(client, "P1")["Body"]["Payments"]
    assert rows == [
        {"MerchantUniqueCode": "P1", "PaymentId": payment["payment_id"], "Amount": 25.5,
         "Status": 4, "Scope": "sale"},
        {"MerchantUniqueCode": "P1", "PaymentId": payment["payment_id"], "Amount": 25.5,
         "Status": 4, "Scope": "cancel"},
    ]  # fmt: skip


def test_private_refund_follows_the_same_rules(client: FlaskClient) -> None:
    """A single refund is 269 on the payment day, accepted the day after, then 93."""
    seed_payment(client, code="P1")

    same_day = call(client, "refund_payment", "P1")
    settings_(client, today=NEXT_DAY)
    accepted = call(client, "refund_payment", "P1")
    again = call(client, "refund_payment", "P1")
    cancel = call(client, "cancel_payment", "P1")

    assert error_code(same_day) == 269
    assert accepted["Result"] is True
    assert (error_code(again), error_code(cancel)) == (93, 97)
    assert effects(client) == {"paywall:refund_payment:P1": 1}


def test_the_private_api_does_not_know_bulk_codes(client: FlaskClient) -> None:
    """A bulk's code on the private API is an unknown payment: 56."""
    seed(client, code="B1")

    assert error_code(call(client, "cancel_payment", "B1")) == 56


def test_a_payment_cancelled_alone_fails_in_a_later_bulk_cancel(client: FlaskClient) -> None:
    """The bulk cancel reports that payment as failed (94): it is cancelled exactly once."""
    seed(client, code="B1", count=3)

    call(client, "cancel_payment", "B1-000002")
    call(client, "cancel_bulk", "B1")

    assert effects(client) == {
        "paywall:cancel_bulk:B1": 1,
        "paywall:cancel_payment:B1-000001": 1,
        "paywall:cancel_payment:B1-000002": 1,
        "paywall:cancel_payment:B1-000003": 1,
    }
    rows = [(r["PaymentId"] - 9001, r["Scope"], r["Status"]) for r in all_rows(client, "B1", 2)]
    assert rows == [
        (0, "sale", 4), (0, "cancel", 4),
        (1, "sale", 4), (1, "cancel", 4), (1, "cancel", 5),
        (2, "sale", 4), (2, "cancel", 4),
    ]  # fmt: skip
    assert summary(client, "B1")["Cancel"] == {"Count": 3, "Amount": 30.0, "FailedCount": 1}
    shown = client.get("/_sandbox/paywall/payments/B1-000002").get_json()
    assert [(op["kind"], op["status"]) for op in shown["operations"]] == [
        ("cancel", 4),
        ("cancel", 5),
    ]


def test_a_payment_that_failed_can_be_retried_alone(client: FlaskClient) -> None:
    """A failing payment's single cancel is accepted with Status 5 and is no effect."""
    seed_payment(client, code="P1", fail=True)

    answer = call(client, "cancel_payment", "P1")

    assert answer["Result"] is True
    assert effects(client) == {}
    assert summary(client, "P1")["Cancel"] == {"Count": 0, "Amount": 0.0, "FailedCount": 1}
    calls = client.get("/_sandbox/calls?operation=cancel_payment").get_json()["calls"]
    assert [(c["target"], c["effect"]) for c in calls] == [("P1", False)]


# --- query and summary -----------------------------------------------------------------------


def test_query_pages_rows_by_payment_then_operation(client: FlaskClient) -> None:
    """Three payments cancelled make six rows; pages of four hold four and two; no totals."""
    seed(client, code="B1", count=3, amount_each="1.25")
    call(client, "cancel_bulk", "B1")

    first, second = query(client, "B1", 4, 1)["Body"], query(client, "B1", 4, 2)["Body"]
    beyond = query(client, "B1", 4, 3)["Body"]

    assert list(first) == list(beyond) == ["Payments"]
    both = first["Payments"] + second["Payments"]
    assert [(r["MerchantUniqueCode"], r["Scope"]) for r in both] == [
        ("B1-000001", "sale"), ("B1-000001", "cancel"), ("B1-000002", "sale"),
        ("B1-000002", "cancel"), ("B1-000003", "sale"), ("B1-000003", "cancel"),
    ]  # fmt: skip
    assert list(first["Payments"][0]) == [
        "MerchantUniqueCode", "PaymentId", "Amount", "Status", "Scope"
    ]  # fmt: skip
    assert first["Payments"][0]["Amount"] == 1.25
    assert beyond["Payments"] == []


@pytest.mark.parametrize("name", ["TotalPaymentCount", "TotalCount"])
def test_query_totals_are_sent_under_the_name_the_setting_gives(
    client: FlaskClient, name: str
) -> None:
    """With query_totals set, each page carries the total under that name and its paging."""
    seed(client, code="B1", count=3)
    call(client, "cancel_bulk", "B1")
    settings_(client, query_totals=name)

    first = query(client, "B1", 4, 1)["Body"]

    assert {k: v for k, v in first.items() if k != "Payments"} == {
        name: 6, "TotalPages": 2, "PageSize": 4, "PageNumber": 1}


@pytest.mark.parametrize(
    "params",
    ["pageSize=1001", "pageSize=0", "pageSize=x", "pageNumber=0", "pageSize=1&pageNumber=-2"],
)
def test_query_refuses_bad_paging_with_invalid_data(client: FlaskClient, params: str) -> None:
    """pageSize must be 1..1000 and pageNumber from 1: otherwise ErrorCode 2."""
    seed(client, code="B1")

    response = client.get(f"{BULK}/payment/query?merchantuniquecode=B1&{params}", headers=PUBLIC)

    assert error_code(response.get_json()) == 2


def test_query_of_an_unknown_code_answers_56(client: FlaskClient) -> None:
    """Nothing under that code: 56; no code at all: 2."""
    unknown = client.get(f"{BULK}/payment/query?merchantuniquecode=NOPE", headers=PUBLIC)
    missing = client.get(f"{BULK}/payment/query/summary", headers=PUBLIC)

    assert (error_code(unknown.get_json()), error_code(missing.get_json())) == (56, 2)


def test_query_shows_results_as_soon_as_the_cancel_answered(client: FlaskClient) -> None:
    """Even with the callback held, the cancel rows are there: a lost callback is recoverable."""
    seed(client, code="B1", count=2, hold=True)

    call(client, "cancel_bulk", "B1")

    assert summary(client, "B1") == {
        "Sale": {"Count": 2, "Amount": 20.0},
        "Cancel": {"Count": 2, "Amount": 20.0, "FailedCount": 0},
        "Refund": {"Count": 0, "Amount": 0.0, "FailedCount": 0},
    }
    assert client.get("/_sandbox/paywall/bulks/B1").get_json()["operations"][0]["held"] is True


@settings(max_examples=50, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=10),
    fail_count=st.integers(min_value=0, max_value=10),
    before=st.lists(st.integers(min_value=0, max_value=9), max_size=6),
    bulk_cancel=st.booleans(),
    after=st.lists(st.integers(min_value=0, max_value=9), max_size=4),
    size=st.integers(min_value=1, max_value=7),
)
def test_paging_any_mix_of_operations_reads_every_row_once_in_order(
    count: int,
    fail_count: int,
    before: list[int],
    bulk_cancel: bool,
    after: list[int],
    size: int,
) -> None:
    """Whatever the single and bulk cancels, the pages concatenate to the ordered rows."""
    client = create_app(clock=Clock(START)).test_client()
    fail_count = min(fail_count, count)
    seed(client, code="B", count=count, fail_count=fail_count, hold=True)
    events = [i % count for i in before] + [-1] * bulk_cancel + [i % count for i in after]
    rows: list[list[tuple[str, int]]] = [[("sale", 4)] for _ in range(count)]
    cancelled = [False] * count
    for event in events:  # the expected rows, modelled independently
        if event == -1:
            call(client, "cancel_bulk", "B")
            hit = range(count)
        else:
            call(client, "cancel_payment", f"B-{event + 1:06d}")
            hit = range(0) if cancelled[event] else range(event, event + 1)  # refused: no row
        for index in hit:
            ok = not cancelled[index] and index >= fail_count
            rows[index].append(("cancel", 4 if ok else 5))
            cancelled[index] = cancelled[index] or ok

    found = all_rows(client, "B", size)

    expected = [
        (f"B-{index + 1:06d}", scope, status)
        for index in range(count)
        for scope, status in rows[index]
    ]
    assert [(r["MerchantUniqueCode"], r["Scope"], r["Status"]) for r in found] == expected


def test_a_bulk_of_150000_payments(client: FlaskClient) -> None:
    """150,000 payments seed, cancel, page and sum in reasonable time; one effect each."""
    started = time.monotonic()
    seeded = seed(client, code="BIG", count=150_000, amount_each="1.01", hold=True)
    settings_(client, query_totals="TotalCount")

    answer = call(client, "cancel_bulk", "BIG")
    last = query(client, "BIG", 1000, 300)["Body"]
    totals = summary(client, "BIG")
    counted = effects(client)

    assert time.monotonic() - started < 20
    assert (seeded["payments"], seeded["total"], len(seeded["payment_codes"])) == (
        150_000, "151500.00", 10
    )  # fmt: skip
    assert answer["Body"]["TotalPaymentCount"] == 150_000
    assert (last["TotalCount"], last["TotalPages"], len(last["Payments"])) == (300_000, 300, 1000)
    assert last["Payments"][-1] == {
        "MerchantUniqueCode": "BIG-150000", "PaymentId": 9000 + 150_000, "Amount": 1.01,
        "Status": 4, "Scope": "cancel",
    }  # fmt: skip
    assert totals["Cancel"] == {"Count": 150_000, "Amount": 151500.0, "FailedCount": 0}
    assert len(counted) == 150_001
    assert set(counted.values()) == {1}


# --- faults, call log, unknown routes, control API -----------------------------------------


def test_faults_and_the_call_log_target_the_merchant_unique_code(client: FlaskClient) -> None:
    """A fault on one bulk's code hits only that bulk; the call log filters by code."""
    seed(client, code="B1")
    seed(client, code="B2")
    client.post(
        "/_sandbox/faults",
        json={"provider": "paywall", "operation": "cancel_bulk", "action": "status",
              "status": 503, "target": "B1"},
    )  # fmt: skip

    faulted = client.post(
        PATHS["cancel_bulk"], json={"Date": DAY, "MerchantUniqueCode": "B1"}, headers=PUBLIC
    )
    other = call(client, "cancel_bulk", "B2")
    query(client, "B1")

    assert faulted.status_code == 503
    assert error_code(faulted.get_json()) == 503
    assert other["Result"] is True
    calls = client.get("/_sandbox/calls?provider=paywall&target=B1").get_json()["calls"]
    assert [(c["operation"], c["status"], c["effect"]) for c in calls] == [
        ("cancel_bulk", 503, False),
        ("query_bulk", 200, False),
    ]
    assert "paywall:cancel_bulk:B1" not in effects(client)


def test_every_operation_is_scriptable() -> None:
    """The operations tests script faults by are all declared, under provider paywall."""
    app = create_app()

    operations = app.extensions["sandbox"].operations()["paywall"]

    assert set(operations) == {
        "cancel_bulk", "refund_bulk", "query_bulk", "query_summary", "send_callback",
        "cancel_payment", "refund_payment",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/paywall/nowhere", 404),
        ("GET", "/paywall-private/api/paywall/private/cancel", 405),
        ("POST", "/paywall-private/nowhere", 404),
        ("DELETE", f"{BULK}/payment/query", 405),
    ],
)
def test_unknown_routes_answer_the_envelope(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    """Wrong paths and methods under both prefixes answer the envelope, logged as paywall."""
    response = client.open(path, method=method)

    assert response.status_code == status
    assert list(response.get_json()) == ENVELOPE
    assert error_code(response.get_json()) == status
    calls = client.get("/_sandbox/calls").get_json()["calls"]
    assert [(c["provider"], c["status"]) for c in calls] == [("paywall", status)]


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "red"},
        {"payments": [{"amount": "1"}], "count": 1},
        {"payments": []},
        {"payments": [{"amount": "1", "colour": "red"}]},
        {"payments": [{"amount": "1.001"}]},
        {"count": 0},
        {"count": 2, "fail_count": 3},
        {"count": 2, "fail": ["nope"]},
        {"count": 2, "fail": [], "fail_count": 1},
        {"date": "21/11/2026"},
        {"callback_url": "not a url"},
        {"order": "sideways"},
        {"drop_pages": "1"},
        {"payments": [{"code": "x", "amount": "1"}, {"code": "x", "amount": "2"}]},
    ],
)
def test_seeding_refuses_invalid_bulks(client: FlaskClient, body: dict[str, Any]) -> None:
    """A typo or an impossible bulk is a 400, never silently ignored."""
    response = client.post("/_sandbox/paywall/bulks", json=body)

    assert response.status_code in (400, 409), response.get_json()
    assert response.get_json()["error"]


def test_codes_are_unique_across_bulks_and_payments(client: FlaskClient) -> None:
    """A code already used by a bulk or a payment answers 409."""
    seed(client, code="B1")

    again = client.post("/_sandbox/paywall/bulks", json={"code": "B1"})
    payment = client.post("/_sandbox/paywall/payments", json={"code": "B1-000001", "amount": 1})

    assert (again.status_code, payment.status_code) == (409, 409)


def test_seeding_answers_a_summary_and_reading_shows_the_bulk(client: FlaskClient) -> None:
    """The seed answer is short; GET shows the day, overrides and operations."""
    seeded = seed(client, code="B1", count=12, amount_each="3.00", callback_url="http://cb/x",
                  order="reverse", fail_count=2)  # fmt: skip
    shown = client.get("/_sandbox/paywall/bulks/B1").get_json()
    missing = client.get("/_sandbox/paywall/bulks/NOPE")

    assert seeded == {
        "code": "B1", "date": DAY, "payments": 12, "total": "36.00",
        "payment_codes": [f"B1-{n:06d}" for n in range(1, 11)],
    }  # fmt: skip
    assert shown["callback_url"] == "http://cb/x"
    assert shown["delivery"] == {"order": "reverse"}
    assert (shown["failing"], shown["operations"]) == (2, [])
    assert missing.status_code == 404


def test_reset_forgets_paywall_data_and_settings(client: FlaskClient) -> None:
    """After a reset there are no bulks, operations or deliveries, and settings are defaults."""
    seed(client, code="B1")
    settings_(client, retries=7, today=NEXT_DAY)

    client.post("/_sandbox/reset")

    assert client.get("/_sandbox/paywall/bulks/B1").status_code == 404
    shown = client.get("/_sandbox/settings").get_json()["paywall"]
    assert (shown["retries"], shown["today"], shown["timezone"]) == (3, None, "Europe/Istanbul")


def test_send_callback_refusals(client: FlaskClient, clock: Clock) -> None:
    """No operation yet: 56; accepted within 7 days; older than 7 days: 269."""
    seed(client, code="B1", hold=True, delay_ms=0)

    none_yet = call(client, "send_callback", "B1")
    call(client, "cancel_bulk", "B1")
    accepted = call(client, "send_callback", "B1")
    clock.now += timedelta(days=7, seconds=1)
    too_old = call(client, "send_callback", "B1")

    assert error_code(none_yet) == 56
    assert accepted["Body"] == {"Result": True}
    assert error_code(too_old) == 269
    assert effects(client) == {
        "paywall:cancel_bulk:B1": 1,
        "paywall:cancel_payment:B1-000001": 1,
    }


# --- callbacks on the wire: a real threaded sandbox and a receiving server -----------------


class Receiver:
    """A tiny HTTP server recording every callback; answers each page from `statuses` first."""

    def __init__(self) -> None:
        self.pages: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length), parse_float=Decimal)
                with receiver.lock:
                    receiver.pages.append(body)
                    receiver.content_types.append(self.headers["Content-Type"])
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/paywall"

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.pages)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    running.thread.join()


@pytest.fixture
def server(clock: Clock) -> Iterator[RunningSandbox]:
    running = start_in_thread(create_app(clock=clock))
    yield running
    running.shutdown()


@pytest.fixture
def http(server: RunningSandbox, receiver: Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        settings_(client, callback_url=receiver.url, delay_ms=0, retry_backoff_ms=10)
        yield client


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 10) -> Any:
    """Poll `condition` until it is truthy (and return it), or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def deliveries(http: httpx.Client, code: str = "") -> dict[str, Any]:
    found: dict[str, Any] = http.get(f"/_sandbox/paywall/deliveries?code={code}").json()
    return found


def settle(http: httpx.Client) -> list[dict[str, Any]]:
    """Every delivery attempt, once the sender has nothing left to do."""
    done = wait_until(lambda: (d := deliveries(http))["pending"] == 0 and d, "the sender")
    attempts: list[dict[str, Any]] = done["deliveries"]
    return attempts


def page_numbers(receiver: Receiver) -> list[int]:
    return [page["PageNumber"] for page in receiver.received()]


def test_2500_payments_arrive_as_three_signed_pages(http: httpx.Client, receiver: Receiver) -> None:
    """Pages of 1,000 payments, JSON, hashed with the hash key over id and bulk code."""
    seed(http, code="B1", count=2500, amount_each="0.10", fail_count=1)

    bulk_payment_id = call(http, "cancel_bulk", "B1")["Body"]["BulkPaymentId"]
    pages = wait_until(lambda: len(receiver.received()) == 3 and receiver.received(), "3 pages")

    assert [p["PageNumber"] for p in pages] == [1, 2, 3]
    assert [len(p["Payments"]) for p in pages] == [1000, 1000, 500]
    assert [p["HasMorePages"] for p in pages] == [True, True, False]
    assert set(receiver.content_types) == {"application/json"}
    first = pages[0]
    assert list(first) == [
        "Type", "BulkPaymentId", "MerchantUniqueCode", "ErrorMessage", "DateTime", "FinishedAt",
        "CreatedAt", "DurationTime", "Hash", "IsCompressed", "PageNumber", "TotalPages",
        "HasMorePages", "Payments",
    ]  # fmt: skip
    assert (first["BulkPaymentId"], first["MerchantUniqueCode"]) == (bulk_payment_id, "B1")
    assert (first["TotalPages"], first["IsCompressed"], first["ErrorMessage"]) == (3, False, None)
    assert first["Hash"] == expected_hash(bulk_payment_id, "B1")
    assert first["DateTime"] == "2026-11-21T09:00:00Z"
    assert first["Payments"][0] == {
        "MerchantUniqueCode": "B1-000001", "PaymentId": 9001, "Amount": Decimal("0.1"),
        "Status": 5, "Scope": "cancel", "ErrorCode": 92,
        "ErrorMessage": "the payment cannot be cancelled",
    }  # fmt: skip
    assert first["Payments"][1]["Status"] == 4
    assert first["Payments"][1]["ErrorCode"] == 0
    assert pages[2]["Payments"][-1]["MerchantUniqueCode"] == "B1-002500"
    logged = settle(http)
    assert [(d["code"], d["page"], d["attempt"], d["status"]) for d in logged] == [
        ("B1", 1, 1, 200), ("B1", 2, 1, 200), ("B1", 3, 1, 200),
    ]  # fmt: skip


def test_reverse_order_duplicates_and_drops(http: httpx.Client, receiver: Receiver) -> None:
    """Reverse order, page 2 twice, page 3 never; send/callback then re-sends every page."""
    seed(http, code="B1", count=4, page_size=1, order="reverse", duplicate_pages=[2],
         drop_pages=[3])  # fmt: skip

    call(http, "cancel_bulk", "B1")
    settle(http)
    first_round = page_numbers(receiver)
    call(http, "send_callback", "B1")
    settle(http)

    assert first_round == [4, 2, 2, 1]
    assert page_numbers(receiver)[4:] == [4, 3, 2, 2, 1]
    assert {p["TotalPages"] for p in receiver.received()} == {4}


def test_shuffled_pages_follow_their_seed(http: httpx.Client, receiver: Receiver) -> None:
    """order shuffle with a seed delivers a reproducible permutation of all pages."""
    seed(http, code="B1", count=6, page_size=1, order="shuffle", seed=7)
    expected = list(range(1, 7))
    random.Random(7).shuffle(expected)

    call(http, "cancel_bulk", "B1")
    settle(http)

    assert page_numbers(receiver) == expected


def test_bad_hash_sends_a_hash_that_does_not_verify(http: httpx.Client, receiver: Receiver) -> None:
    """bad_hash: the page arrives, but its Hash is not the one the hash key gives."""
    seed(http, code="B1", bad_hash=True)

    bulk_payment_id = call(http, "cancel_bulk", "B1")["Body"]["BulkPaymentId"]
    pages = wait_until(receiver.received, "the page")

    assert len(pages[0]["Hash"]) == 64
    assert pages[0]["Hash"] != expected_hash(bulk_payment_id, "B1")


def test_the_hash_key_setting_signs_the_pages(http: httpx.Client, receiver: Receiver) -> None:
    """A hash key set through the settings is the one the Hash is computed with."""
    settings_(http, hash_key="k2")
    seed(http, code="B1")

    bulk_payment_id = call(http, "cancel_bulk", "B1")["Body"]["BulkPaymentId"]
    pages = wait_until(receiver.received, "the page")

    assert pages[0]["Hash"] == expected_hash(bulk_payment_id, "B1", key="k2")


def test_held_callbacks_wait_for_deliver(http: httpx.Client, receiver: Receiver) -> None:
    """A held bulk's pages are not sent, while others are, until deliver releases them."""
    seed(http, code="HELD", hold=True)
    seed(http, code="FREE")

    held_id = call(http, "cancel_bulk", "HELD")["Body"]["BulkPaymentId"]
    call(http, "cancel_bulk", "FREE")
    settle(http)
    before = [p["MerchantUniqueCode"] for p in receiver.received()]
    released = http.post("/_sandbox/paywall/bulks/HELD/deliver").json()
    settle(http)

    assert before == ["FREE"]
    assert released == {"released": [held_id]}
    assert [p["MerchantUniqueCode"] for p in receiver.received()] == ["FREE", "HELD"]
    assert http.get("/_sandbox/paywall/bulks/HELD").json()["operations"][0]["held"] is False


def test_send_callback_ignores_hold(http: httpx.Client, receiver: Receiver) -> None:
    """A held operation's pages go out when send/callback asks for them."""
    seed(http, code="B1", hold=True)
    call(http, "cancel_bulk", "B1")

    call(http, "send_callback", "B1")

    assert wait_until(receiver.received, "the page")[0]["MerchantUniqueCode"] == "B1"


def test_a_page_without_2xx_is_retried(http: httpx.Client, receiver: Receiver) -> None:
    """Two 500s, then a 200: three attempts logged, the page received three times."""
    receiver.statuses = [500, 500]
    seed(http, code="B1")

    call(http, "cancel_bulk", "B1")
    logged = settle(http)

    assert [(d["attempt"], d["status"]) for d in logged] == [(1, 500), (2, 500), (3, 200)]
    assert page_numbers(receiver) == [1, 1, 1]


def test_retries_stop_after_the_retries_setting(http: httpx.Client, receiver: Receiver) -> None:
    """Always 503 with retries 2: exactly three attempts, then the sender gives up."""
    settings_(http, retries=2)
    receiver.statuses = [503] * 10
    seed(http, code="B1")

    call(http, "cancel_bulk", "B1")
    logged = settle(http)

    assert [(d["attempt"], d["status"]) for d in logged] == [(1, 503), (2, 503), (3, 503)]


def test_an_unreachable_callback_url_is_retried_and_logged(
    http: httpx.Client, receiver: Receiver
) -> None:
    """A refused connection is logged by its error class and retried like a non-2xx."""
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings_(http, retries=1)
    seed(http, code="B1", callback_url=f"http://127.0.0.1:{port}/callbacks")

    call(http, "cancel_bulk", "B1")
    logged = settle(http)

    assert [(d["attempt"], d["status"]) for d in logged] == [
        (1, "ConnectError"),
        (2, "ConnectError"),
    ]


def test_single_payment_callback_carries_the_payment_code(
    http: httpx.Client, receiver: Receiver
) -> None:
    """A single cancel's callback is one page whose MerchantUniqueCode is the payment's."""
    seed_payment(http, code="P1", amount="7.00")

    bulk_payment_id = call(http, "cancel_payment", "P1")["Body"]["BulkPaymentId"]
    pages = wait_until(receiver.received, "the page")

    assert len(pages) == 1
    assert (pages[0]["MerchantUniqueCode"], pages[0]["TotalPages"]) == ("P1", 1)
    assert pages[0]["Hash"] == expected_hash(bulk_payment_id, "P1")
    assert [(p["MerchantUniqueCode"], p["Status"]) for p in pages[0]["Payments"]] == [("P1", 4)]


def test_per_bulk_callback_control_overrides_the_settings(
    http: httpx.Client, receiver: Receiver
) -> None:
    """Steering a bulk's callbacks after seeding changes its page size and order only."""
    seed(http, code="B1", count=3)
    steered = http.post(
        "/_sandbox/paywall/bulks/B1/callbacks", json={"page_size": 2, "order": "reverse"}
    ).json()

    call(http, "cancel_bulk", "B1")
    settle(http)

    assert steered["delivery"] == {"page_size": 2, "order": "reverse"}
    assert page_numbers(receiver) == [2, 1]
    assert [len(p["Payments"]) for p in receiver.received()] == [1, 2]


def test_delay_holds_the_first_page_back(http: httpx.Client, receiver: Receiver) -> None:
    """delay_ms: nothing is sent before the delay, the page comes after it."""
    seed(http, code="B1", delay_ms=300)

    started = time.monotonic()
    call(http, "cancel_bulk", "B1")
    wait_until(receiver.received, "the page")

    assert time.monotonic() - started >= 0.3


def test_reset_drops_callbacks_still_waiting(http: httpx.Client, receiver: Receiver) -> None:
    """Pages queued before a reset are never sent after it."""
    seed(http, code="B1", delay_ms=200)
    call(http, "cancel_bulk", "B1")

    http.post("/_sandbox/reset")
    settle(http)

    assert receiver.received() == []


def test_shutdown_stops_the_sender_thread(clock: Clock) -> None:
    """A sandbox shut down with callbacks still waiting leaves no sender thread behind."""
    running = start_in_thread(create_app(clock=clock))
    before = set(threading.enumerate())
    with httpx.Client(base_url=running.url, timeout=10) as client:
        seed(client, code="B1", delay_ms=60_000, callback_url="http://127.0.0.1:9/none")
        call(client, "cancel_bulk", "B1")
    senders = [
        t for t in set(threading.enumerate()) - before if t.name == "sandbox-paywall-callbacks"
    ]

    running.shutdown()

    assert len(senders) == 1
    assert senders[0].daemon
    wait_until(lambda: not senders[0].is_alive(), "the sender thread to end", seconds=2)
