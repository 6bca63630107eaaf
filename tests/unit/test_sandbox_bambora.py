"""The sandbox's Bambora emulation: token service, payments API, seeding, faults, raw references."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import RunningSandbox, create_app, start_in_thread
from tests.seeds import example_body
from tests.support import Clock

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CLIENT = ("sandbox-client", "sandbox-secret")
GRANT = {"grant_type": "client_credentials", "scope": "cancel_payment read_payment"}
PROBLEMS = "https://api.bambora.com/problems/"
MERCHANT = "m-1"
# Every reserved character a path segment can carry, plus non-ASCII (2-, 3- and 4-byte UTF-8).
RESERVED = "/?#%&=+ ;:@!$'()*,[]~\\\"<>{}|^`é€😀"


def seed(client: Any, reference: str = "order-1", **body: Any) -> dict[str, Any]:
    """Seed one payment through the control API (test client or httpx client)."""
    response = client.post(
        "/_sandbox/bambora/payments", json={"merchant": MERCHANT, "reference": reference, **body}
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json() if callable(response.json) else response.json
    return payment


def token(client: Any) -> str:
    response = client.post("/bambora-auth/connect/token", data=GRANT, auth=CLIENT)
    assert response.status_code == 200, response.text
    body = response.json() if callable(response.json) else response.json
    access_token: str = body["access_token"]
    return access_token


def headers(client: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client)}", "API-Version": "1"}


def url(reference: str, action: str = "", merchant: str = MERCHANT) -> str:
    """A payment URL with the reference percent-encoded as one path segment."""
    suffix = f"{action}/" if action else ""
    return f"/bambora/v1/merchants/{merchant}/payments/{quote(reference, safe='')}/{suffix}"


def payment_state(client: FlaskClient, reference: str) -> str:
    read = client.get(f"/_sandbox/bambora/payments/{MERCHANT}/{quote(reference, safe='')}")
    state: str = read.get_json()["state"]
    return state


def effects(client: FlaskClient) -> dict[str, int]:
    found: dict[str, int] = client.get("/_sandbox/effects?provider=bambora").get_json()["effects"]
    return found


# --- token service -----------------------------------------------------------------------


def test_token_with_good_client_credentials(client: FlaskClient) -> None:
    """HTTP Basic client credentials and a client_credentials grant get a Bearer token."""
    response = client.post("/bambora-auth/connect/token", data=GRANT, auth=CLIENT)

    answer = response.get_json()
    assert response.status_code == 200
    assert list(answer) == ["access_token", "token_type", "expires_in"]
    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 3600)
    assert len(answer["access_token"]) >= 32


@pytest.mark.parametrize(
    "auth", [("sandbox-client", "wrong"), ("other", "sandbox-secret"), None, "bearer"]
)
def test_token_with_bad_client_credentials_answers_invalid_client(
    client: FlaskClient, auth: Any
) -> None:
    """A wrong id or secret, no credentials or a non-Basic scheme: 401 invalid_client."""
    extra = {"headers": {"Authorization": "Bearer x"}} if auth == "bearer" else {"auth": auth}

    response = client.post("/bambora-auth/connect/token", data=GRANT, **extra)

    assert (response.status_code, response.get_json()) == (401, {"error": "invalid_client"})


@pytest.mark.parametrize(
    ("form", "error"),
    [({}, "invalid_request"), ({"grant_type": "password"}, "unsupported_grant_type")],
)
def test_token_needs_the_client_credentials_grant(
    client: FlaskClient, form: dict[str, str], error: str
) -> None:
    """A missing or other grant_type is an OAuth2 400."""
    response = client.post("/bambora-auth/connect/token", data=form, auth=CLIENT)

    assert (response.status_code, response.get_json()) == (400, {"error": error})


def test_settings_change_client_credentials_and_token_lifetime(client: FlaskClient) -> None:
    """Settings replace the credentials and expires_in; the secret is never shown."""
    changed = client.post(
        "/_sandbox/settings",
        json={"bambora": {"client_id": "c2", "client_secret": "s2", "token_ttl_seconds": 60}},
    )

    assert changed.get_json()["bambora"] == {
        "client_id": "c2",
        "client_secret": "***",
        "token_ttl_seconds": 60,
    }
    old = client.post("/bambora-auth/connect/token", data=GRANT, auth=CLIENT)
    new = client.post("/bambora-auth/connect/token", data=GRANT, auth=("c2", "s2"))
    assert old.status_code == 401
    assert new.get_json()["expires_in"] == 60


@pytest.mark.parametrize(
    "body",
    [
        {"bambora": {"client_secret": ""}},
        {"bambora": {"token_ttl_seconds": -1}},
        {"bambora": {"colour": "red"}},
    ],
)
def test_invalid_settings_are_refused(client: FlaskClient, body: dict[str, Any]) -> None:
    """Settings the sandbox cannot honour answer 400 and change nothing."""
    response = client.post("/_sandbox/settings", json=body)

    assert response.status_code == 400
    assert client.get("/_sandbox/settings").get_json()["bambora"]["token_ttl_seconds"] == 3600


def test_expired_token_answers_401(client: FlaskClient, clock: Clock) -> None:
    """A token works until expires_in seconds have passed."""
    seed(client)
    sent = headers(client)
    clock.now += timedelta(seconds=3599)
    assert client.get(url("order-1"), headers=sent).status_code == 200

    clock.now += timedelta(seconds=1)

    assert client.get(url("order-1"), headers=sent).status_code == 401


def test_revoked_tokens_answer_401_until_a_new_token_is_fetched(client: FlaskClient) -> None:
    """Revoking tokens forces the refresh-on-401 path; a fresh token works again."""
    seed(client)
    sent = headers(client)

    revoked = client.post("/_sandbox/bambora/revoke-tokens").get_json()

    assert revoked == {"revoked": 1}
    assert client.get(url("order-1"), headers=sent).status_code == 401
    assert client.get(url("order-1"), headers=headers(client)).status_code == 200


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nope", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="]
)
def test_calls_without_a_valid_token_answer_401(
    client: FlaskClient, authorization: str | None
) -> None:
    """Missing, unknown or non-bearer credentials: 401 in the error shape, nothing cancelled."""
    seed(client)
    sent = {"API-Version": "1"} | ({"Authorization": authorization} if authorization else {})

    response = client.post(url("order-1", "cancel"), headers=sent)

    answer = response.get_json()
    assert response.status_code == 401
    assert list(answer) == ["type", "title", "detail", "status"]
    assert (answer["type"], answer["status"]) == (PROBLEMS + "unauthorized", 401)
    assert payment_state(client, "order-1") == "Authorized"


# --- payments API ------------------------------------------------------------------------


def test_get_payment_answers_the_documented_model(client: FlaskClient) -> None:
    """GET answers 200 with the payment in seed 002's shape: its keys in its order, amount and
    currency in the authorize operation, no top-level reference, amount or currency."""
    seed(client, amount=12345, currency="EUR")
    example = example_body("002", having="operations")

    response = client.get(url("order-1"), headers=headers(client))

    answer = response.get_json()
    assert response.status_code == 200
    assert list(answer) == list(example)
    assert (answer["state"], answer["external_id"], answer["merchant_id"]) == (
        "Authorized", "order-1", MERCHANT)
    authorize = answer["operations"][0]
    assert list(authorize) == list(example["operations"][0])
    assert (authorize["type"], authorize["amount"], authorize["currency"]) == (
        "Authorize token", 12345, "EUR")
    assert len(answer["operations"]) == 1


@pytest.mark.parametrize("version", [None, "2", ""])
def test_missing_or_wrong_api_version_answers_400(client: FlaskClient, version: str | None) -> None:
    """Without `API-Version: 1` a call is a 400 bad request and changes nothing."""
    seed(client)
    sent = {"Authorization": headers(client)["Authorization"]}
    if version is not None:
        sent["API-Version"] = version

    response = client.post(url("order-1", "cancel"), headers=sent)

    assert response.status_code == 400
    assert response.get_json()["type"] == PROBLEMS + "bad_request"
    assert payment_state(client, "order-1") == "Authorized"


def test_cancel_an_authorized_payment_answers_201_canceled(
    client: FlaskClient, clock: Clock
) -> None:
    """Cancelling an Authorized payment answers 201 with it Canceled, counted as one effect."""
    seed(client)
    clock.now += timedelta(minutes=5)

    response = client.post(url("order-1", "cancel"), headers=headers(client))

    answer = response.get_json()
    assert response.status_code == 201
    assert answer["state"] == "Canceled"
    cancel = answer["operations"][-1]
    assert list(cancel) == list(example_body("002", having="operations")["operations"][1])
    assert (cancel["type"], cancel["success"], cancel["timestamp"]) == (
        "Cancel", True, "2026-11-21T12:05:00.000Z")
    assert payment_state(client, "order-1") == "Canceled"
    assert effects(client) == {f"bambora:cancel_payment:{MERCHANT}/order-1": 1}


@pytest.mark.parametrize(
    ("state", "status", "code"),
    [
        ("Captured", 402, "cannot_cancel"),
        ("Settled", 402, "cannot_cancel"),
        ("Refunded", 402, "cannot_cancel"),
        ("Canceled", 422, "invalid_payment_state_transition"),
        ("Declined", 422, "invalid_payment_state_transition"),
        ("Voided", 422, "invalid_payment_state_transition"),
        ("Authorization Expired", 422, "invalid_payment_state_transition"),
        ("None", 422, "invalid_payment_state_transition"),
    ],
)
def test_cancel_is_refused_in_every_other_state(
    client: FlaskClient, state: str, status: int, code: str
) -> None:
    """Only Authorized can be cancelled: 402 cannot_cancel or 422, and the state stays."""
    seed(client, state=state)

    response = client.post(url("order-1", "cancel"), headers=headers(client))

    answer = response.get_json()
    assert response.status_code == status
    assert answer["type"] == f"{PROBLEMS}payments/{code}"
    assert answer["status"] == status
    assert set(answer) == {"type", "title", "detail", "status"}
    assert payment_state(client, "order-1") == state
    assert effects(client) == {}


def test_a_second_cancel_is_422_and_the_effect_is_counted_once(client: FlaskClient) -> None:
    """Cancelling a Canceled payment is refused with 422 and is no second effect."""
    seed(client)
    sent = headers(client)
    first = client.post(url("order-1", "cancel"), headers=sent)

    again = client.post(url("order-1", "cancel"), headers=sent)

    assert (first.status_code, again.status_code) == (201, 422)
    assert again.get_json()["type"] == PROBLEMS + "payments/invalid_payment_state_transition"
    assert effects(client) == {f"bambora:cancel_payment:{MERCHANT}/order-1": 1}


@pytest.mark.parametrize(
    ("portal_state", "status"), [("Canceled", 422), ("Captured", 402)])
def test_a_portal_change_is_not_visible_to_the_api_but_refuses_its_cancel(
    client: FlaskClient, portal_state: str, status: int
) -> None:
    """A payment cancelled (or captured) in the merchant portal still reads Authorized through
    the API, with no operation recorded, and the API's cancel is refused (seed 002)."""
    seed(client)
    sent = headers(client)

    moved = client.post(
        f"/_sandbox/bambora/payments/{MERCHANT}/state",
        json={"reference": "order-1", "state": portal_state},
    )
    read = client.get(url("order-1"), headers=sent).get_json()
    response = client.post(url("order-1", "cancel"), headers=sent)
    read_again = client.get(url("order-1"), headers=sent).get_json()

    assert moved.status_code == 200
    assert (moved.get_json()["state"], moved.get_json()["portal_state"]) == (
        "Authorized", portal_state)
    assert read["state"] == read_again["state"] == "Authorized"
    assert [op["type"] for op in read_again["operations"]] == ["Authorize token"]
    assert response.status_code == status
    assert effects(client) == {}


@pytest.mark.parametrize("action", ["", "cancel"])
def test_unknown_payment_answers_404_payment_not_found(client: FlaskClient, action: str) -> None:
    """An unknown reference, or a known one under another merchant, is payment_not_found."""
    seed(client)
    method = client.post if action else client.get
    sent = headers(client)

    unknown = method(url("order-2", action), headers=sent)
    other_merchant = method(url("order-1", action, merchant="m-2"), headers=sent)

    for response in (unknown, other_merchant):
        assert response.status_code == 404
        assert response.get_json()["type"] == PROBLEMS + "payments/payment_not_found"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/bambora/v2/merchants/m-1/payments/order-1/", 404),
        ("GET", "/bambora/v1/merchants/m-1/payments/order-1", 404),
        ("POST", "/bambora/v1/merchants/m-1/payments/order-1/cancel", 404),
        ("POST", "/bambora/v1/merchants/m-1/payments/order-1/refund/", 404),
        ("GET", "/bambora/v1/merchants/m-1/payments//", 404),
        ("GET", "/bambora/v1/merchants/m-1/payments/a/b/", 404),
        ("GET", "/bambora-auth/connect/nothing", 404),
        ("GET", "/bambora/v1/merchants/m-1/payments/order-1/cancel/", 405),
        ("POST", "/bambora/v1/merchants/m-1/payments/order-1/", 405),
        ("PUT", "/bambora/v1/merchants/m-1/payments/order-1/", 405),
        ("GET", "/bambora-auth/connect/token", 405),
        ("GET", "/bambora/v1/merchants/m-1/payments/%FF/", 400),
    ],
)
def test_unknown_routes_answer_in_the_error_shape(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    """Paths and methods no operation serves get the error body and a call-log entry."""
    seed(client)

    response = client.open(path, method=method, headers=headers(client))

    answer = response.get_json()
    assert response.status_code == status
    assert set(answer) == {"type", "title", "detail", "status"}
    assert answer["type"].startswith(PROBLEMS)
    assert answer["status"] == status
    calls = client.get("/_sandbox/calls?provider=bambora").get_json()["calls"]
    assert (calls[-1]["operation"], calls[-1]["status"]) == (None, status)
    assert payment_state(client, "order-1") == "Authorized"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"comment": "x" * 256}, 201),
        ({"comment": ""}, 201),
        ({}, 201),
        ({"comment": "x" * 257}, 400),
        ({"comment": 7}, 400),
        (["comment"], 400),
    ],
)
def test_cancel_comment_is_optional_and_at_most_256_characters(
    client: FlaskClient, body: Any, status: int
) -> None:
    """A comment up to 256 characters is fine; longer or not text is a 400 that cancels nothing."""
    seed(client)

    response = client.post(url("order-1", "cancel"), headers=headers(client), json=body)

    assert response.status_code == status
    assert payment_state(client, "order-1") == ("Canceled" if status == 201 else "Authorized")
    if status == 400:
        assert response.get_json()["type"] == PROBLEMS + "bad_request"


def test_cancel_body_that_is_not_json_answers_400(client: FlaskClient) -> None:
    """A body that does not parse is a bad request."""
    seed(client)
    sent = headers(client) | {"Content-Type": "application/json"}

    response = client.post(url("order-1", "cancel"), headers=sent, data="{comment")

    assert response.status_code == 400


def test_reference_longer_than_2000_characters_answers_400(client: FlaskClient) -> None:
    """References have at most 2,000 characters: a longer one is a bad request."""
    response = client.get(url("r" * 2001), headers=headers(client))

    assert response.status_code == 400
    assert response.get_json()["type"] == PROBLEMS + "bad_request"


def test_references_are_decoded_exactly_once(client: FlaskClient) -> None:
    """`a/b`, `a%2Fb` and `a%252Fb` are three different references, each found by its own URL."""
    references = ["a/b", "a%2Fb", "a%252Fb"]
    for amount, reference in enumerate(references, start=1):
        seed(client, reference, amount=amount)
    sent = headers(client)

    found = [client.get(url(reference), headers=sent).get_json() for reference in references]

    assert [(p["external_id"], p["operations"][0]["amount"]) for p in found] == [
        ("a/b", 1),
        ("a%2Fb", 2),
        ("a%252Fb", 3),
    ]


@pytest.mark.parametrize("reference", [".", "..", "a b", "é/€"])
def test_dot_and_odd_references_sent_fully_encoded_are_found(
    client: FlaskClient, reference: str
) -> None:
    """`.` and `..` sent as `%2E` (clients drop literal dot segments) are ordinary references."""
    seed(client, reference)
    encoded = "".join(f"%{byte:02X}" for byte in reference.encode())

    response = client.get(
        f"/bambora/v1/merchants/{MERCHANT}/payments/{encoded}/?ignored=1", headers=headers(client)
    )

    assert (response.status_code, response.get_json()["external_id"]) == (200, reference)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_reference_round_trips(reference: str) -> None:
    """Whatever the text, a reference encoded as one segment finds its payment and is the target."""
    client = create_app().test_client()
    seed(client, reference)

    response = client.post(url(reference, "cancel"), headers=headers(client))

    assert response.status_code == 201
    assert response.get_json()["external_id"] == reference
    assert effects(client) == {f"bambora:cancel_payment:{MERCHANT}/{reference}": 1}


# --- faults ------------------------------------------------------------------------------


def test_scripted_409_then_a_retry_after_rereading_succeeds(client: FlaskClient) -> None:
    """A 409 payment_operation_blocked fault cancels nothing; the retry cancels once."""
    seed(client)
    blocked = {
        "type": PROBLEMS + "payments/payment_operation_blocked",
        "title": "Payment operation blocked",
        "detail": "The payment is being modified by another request.",
        "status": 409,
    }
    fault = client.post(
        "/_sandbox/faults",
        json={
            "provider": "bambora",
            "operation": "cancel_payment",
            "action": "status",
            "status": 409,
            "body": blocked,
        },
    )
    sent = headers(client)

    first = client.post(url("order-1", "cancel"), headers=sent)
    reread = client.get(url("order-1"), headers=sent)
    retry = client.post(url("order-1", "cancel"), headers=sent)

    assert fault.status_code == 201
    assert (first.status_code, first.get_json()) == (409, blocked)
    assert reread.get_json()["state"] == "Authorized"
    assert retry.status_code == 201
    assert effects(client) == {f"bambora:cancel_payment:{MERCHANT}/order-1": 1}


@pytest.mark.parametrize(
    ("status", "code"), [(409, "payments/payment_operation_blocked"), (503, "service_unavailable")]
)
def test_scripted_status_without_a_body_answers_in_the_error_shape(
    client: FlaskClient, status: int, code: str
) -> None:
    """A fault without a body gets Bambora's error body for its status."""
    seed(client)
    sent = headers(client)
    client.post(
        "/_sandbox/faults",
        json={"provider": "bambora", "operation": "*", "action": "status", "status": status},
    )

    response = client.post(url("order-1", "cancel"), headers=sent)

    assert response.status_code == status
    assert response.get_json()["type"] == PROBLEMS + code
    assert response.get_json()["status"] == status


def test_faults_can_target_one_reference(client: FlaskClient) -> None:
    """A fault's target is `<merchant>/<reference>`, the decoded reference."""
    seed(client, "a/b")
    seed(client, "c")
    client.post(
        "/_sandbox/faults",
        json={
            "provider": "bambora",
            "operation": "cancel_payment",
            "action": "status",
            "status": 503,
            "target": f"{MERCHANT}/a/b",
            "times": 0,
        },
    )
    sent = headers(client)

    statuses = [client.post(url(r, "cancel"), headers=sent).status_code for r in ("c", "a/b")]

    assert statuses == [201, 503]
    calls = client.get("/_sandbox/calls?operation=cancel_payment").get_json()["calls"]
    assert [c["target"] for c in calls] == [f"{MERCHANT}/c", f"{MERCHANT}/a/b"]


# --- control API -------------------------------------------------------------------------


def test_seeding_defaults_and_reading_back_without_a_call_log_entry(client: FlaskClient) -> None:
    """A seeded payment is Authorized, 10000 SEK; reading it back logs no provider call."""
    created = seed(client, "a/b?c#d")

    read = client.get(f"/_sandbox/bambora/payments/{MERCHANT}/{quote('a/b?c#d', safe='')}")

    assert (created["state"], created["amount"], created["currency"]) == (
        "Authorized",
        10000,
        "SEK",
    )
    assert read.get_json() == created
    assert client.get("/_sandbox/calls").get_json()["calls"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"merchant": MERCHANT, "reference": "r", "colour": "red"},
        {"merchant": MERCHANT, "reference": "r", "state": "Lost"},
        {"merchant": MERCHANT, "reference": "r", "currency": "kr"},
        {"merchant": MERCHANT, "reference": "r", "amount": -1},
        {"merchant": MERCHANT, "reference": "r", "amount": "100"},
        {"merchant": MERCHANT, "reference": "r", "amount": True},
        {"merchant": "", "reference": "r"},
        {"reference": "r"},
        {"merchant": MERCHANT},
        {"merchant": MERCHANT, "reference": "r" * 2001},
    ],
)
def test_seeding_refuses_invalid_payments(client: FlaskClient, body: dict[str, Any]) -> None:
    """A typo or an impossible payment is a 400, never silently ignored."""
    response = client.post("/_sandbox/bambora/payments", json=body)

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]


def test_seeding_the_same_payment_twice_conflicts(client: FlaskClient) -> None:
    """A merchant's references are unique: seeding one again answers 409."""
    seed(client)

    response = client.post(
        "/_sandbox/bambora/payments", json={"merchant": MERCHANT, "reference": "order-1"}
    )

    assert response.status_code == 409


def test_bulk_seeding_creates_5000_payments_well_under_a_second(client: FlaskClient) -> None:
    """5,000 payments are created in one call, fast, with predictable references."""
    started = time.monotonic()
    response = client.post(
        "/_sandbox/bambora/payments/bulk",
        json={"merchant": MERCHANT, "count": 5000, "amount": 250, "currency": "NOK"},
    )
    elapsed = time.monotonic() - started

    answer = response.get_json()
    assert response.status_code == 201
    assert elapsed < 0.5
    assert answer == {"created": 5000, "references": [f"ref-{n}" for n in range(1, 11)]}
    last = client.get(f"/_sandbox/bambora/payments/{MERCHANT}/ref-5000").get_json()
    assert (last["state"], last["amount"], last["currency"]) == ("Authorized", 250, "NOK")
    assert client.get(f"/_sandbox/bambora/payments/{MERCHANT}/ref-5001").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"merchant": MERCHANT},
        {"merchant": MERCHANT, "count": 0},
        {"merchant": MERCHANT, "count": 100_001},
        {"merchant": MERCHANT, "count": 2, "prefix": "p" * 2000},
        {"merchant": MERCHANT, "count": 2, "state": "Lost"},
        {"merchant": MERCHANT, "count": 2, "reference": "r"},
    ],
)
def test_bulk_seeding_refuses_invalid_requests(client: FlaskClient, body: dict[str, Any]) -> None:
    """Bulk seeding validates like single seeding, all or nothing."""
    response = client.post("/_sandbox/bambora/payments/bulk", json=body)

    assert response.status_code == 400, response.get_json()


def test_bulk_seeding_that_collides_creates_nothing(client: FlaskClient) -> None:
    """If any reference exists, the bulk answers 409 and creates none of the others."""
    seed(client, "x-3")

    response = client.post(
        "/_sandbox/bambora/payments/bulk", json={"merchant": MERCHANT, "count": 5, "prefix": "x-"}
    )

    assert response.status_code == 409
    assert client.get(f"/_sandbox/bambora/payments/{MERCHANT}/x-1").status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"reference": "order-1", "state": "Lost"}, {"reference": "order-1"}, {"state": "Voided"}],
)
def test_moving_a_payment_refuses_invalid_requests(
    client: FlaskClient, body: dict[str, Any]
) -> None:
    """A state move needs a reference and a known state."""
    seed(client)

    response = client.post(f"/_sandbox/bambora/payments/{MERCHANT}/state", json=body)

    assert response.status_code == 400
    assert payment_state(client, "order-1") == "Authorized"


def test_moving_or_reading_an_unknown_payment_answers_404(client: FlaskClient) -> None:
    """The control API says 404 for a payment it does not hold."""
    moved = client.post(
        f"/_sandbox/bambora/payments/{MERCHANT}/state", json={"reference": "no", "state": "Voided"}
    )
    read = client.get(f"/_sandbox/bambora/payments/{MERCHANT}/no")

    assert (moved.status_code, read.status_code) == (404, 404)


# --- on the wire: a real threaded server -------------------------------------------------


@pytest.fixture
def server() -> Iterator[RunningSandbox]:
    running = start_in_thread(create_app())
    yield running
    running.shutdown()


@pytest.fixture
def http(server: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def long_reference() -> str:
    """2,000 characters cycling through reserved and non-ASCII characters."""
    reference = "".join(itertools.islice(itertools.cycle(RESERVED), 2000))
    assert len(reference) == 2000
    return reference


def test_a_2000_character_reference_round_trips_over_http(http: httpx.Client) -> None:
    """The longest reference, full of reserved characters, is found, cancelled and logged intact."""
    reference = long_reference()
    seed(http, reference)
    sent = headers(http)
    encoded = quote(reference, safe="")

    got = http.get(f"/bambora/v1/merchants/{MERCHANT}/payments/{encoded}/", headers=sent)
    cancelled = http.post(
        f"/bambora/v1/merchants/{MERCHANT}/payments/{encoded}/cancel/",
        headers=sent,
        json={"comment": "round trip"},
    )
    read = http.get(f"/_sandbox/bambora/payments/{MERCHANT}/{encoded}")

    assert encoded in str(cancelled.request.url)  # sent as one encoded segment, untouched
    assert (got.status_code, got.json()["external_id"]) == (200, reference)
    assert (cancelled.status_code, cancelled.json()["external_id"]) == (201, reference)
    assert cancelled.json()["operations"][-1]["comment"] == "round trip"
    assert read.json()["state"] == "Canceled"
    target = f"{MERCHANT}/{reference}"
    assert http.get("/_sandbox/effects").json()["effects"] == {
        f"bambora:cancel_payment:{target}": 1
    }
    calls = http.get("/_sandbox/calls", params={"provider": "bambora"}).json()["calls"]
    assert [(c["operation"], c["target"]) for c in calls[-2:]] == [
        ("get_payment", target),
        ("cancel_payment", target),
    ]


def test_latency_is_slept_outside_the_lock(http: httpx.Client) -> None:
    """With 200 ms latency, 20 concurrent cancels take about 200 ms, not 20 x 200 ms."""
    http.post("/_sandbox/bambora/payments/bulk", json={"merchant": MERCHANT, "count": 20})
    http.post("/_sandbox/settings", json={"latency_ms": 200})
    sent = headers(http)
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def cancel(n: int) -> None:
        barrier.wait()
        statuses.append(http.post(url(f"ref-{n}", "cancel"), headers=sent).status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=cancel, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert statuses == [201] * 20
    assert elapsed < 2.0
    assert len(http.get("/_sandbox/effects").json()["effects"]) == 20
