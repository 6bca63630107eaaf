"""The sandbox's 6DOT50 emulation and its seeding routes, through Flask's test client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import create_app
from tests.seeds import example_body
from tests.support import Clock

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CREDENTIALS = {"key": "sandbox-key", "secret": "sandbox-secret"}
UNKNOWN_ID = "f945d71c-b00f-4e77-8175-253093157a2f"


def seed(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.post("/_sandbox/sixdot50/batches", json=body)
    assert response.status_code == 201, response.get_json()
    batch: dict[str, Any] = response.get_json()
    return batch


def bearer(client: FlaskClient) -> dict[str, str]:
    answer = client.post("/sixdot50/authentication/getToken", json=CREDENTIALS).get_json()
    return {"Authorization": f"Bearer {answer['token']}"}


def exact(response: Any) -> Any:
    """The body parsed the way a careful client parses amounts: as Decimal."""
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


def effects(client: FlaskClient) -> dict[str, int]:
    found: dict[str, int] = client.get("/_sandbox/effects?provider=sixdot50").get_json()["effects"]
    return found


def test_get_token_issues_a_token_valid_for_15_minutes(client: FlaskClient) -> None:
    """A matching key and secret get a token that expires 900 s later, in UTC with Z."""
    response = client.post("/sixdot50/authentication/getToken", json=CREDENTIALS)

    answer = response.get_json()
    assert response.status_code == 200
    assert answer["success"] is True
    assert len(answer["token"]) >= 32
    assert answer["expiresAt"] == "2026-11-21T12:15:00.000Z"


@pytest.mark.parametrize(
    "body", [{"key": "sandbox-key", "secret": "wrong"}, {"key": "other", "secret": "x"}, {}]
)
def test_get_token_with_wrong_credentials_answers_success_false(
    client: FlaskClient, body: dict[str, str]
) -> None:
    """Wrong credentials answer 200 `{"success": false}`, as the docs show."""
    response = client.post("/sixdot50/authentication/getToken", json=body)

    assert (response.status_code, response.get_json()) == (200, {"success": False})


def test_get_token_with_malformed_json_answers_400(client: FlaskClient) -> None:
    """A body that is not JSON is a 400 validation error."""
    response = client.post(
        "/sixdot50/authentication/getToken", data="{key", content_type="application/json"
    )

    assert response.status_code == 400
    assert "message" in response.get_json()


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}]
)
def test_routes_without_a_valid_token_answer_401(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    """Missing, unknown or non-bearer credentials answer 401 Unauthorized."""
    batch = seed(client)

    response = client.get(f"/sixdot50/batches/{batch['id']}", headers=headers)

    assert (response.status_code, response.get_json()) == (401, {"message": "Unauthorized"})


def test_expired_token_answers_401(client: FlaskClient, clock: Clock) -> None:
    """A token stops working once its 15 minutes are over."""
    batch, headers = seed(client), bearer(client)
    clock.now += timedelta(seconds=899)
    assert client.get(f"/sixdot50/batches/{batch['id']}", headers=headers).status_code == 200

    clock.now += timedelta(seconds=1)

    assert client.get(f"/sixdot50/batches/{batch['id']}", headers=headers).status_code == 401


def test_revoked_tokens_answer_401_until_a_new_token_is_fetched(client: FlaskClient) -> None:
    """Revoking tokens forces the refresh-on-401 path; a fresh token works again."""
    batch, headers = seed(client), bearer(client)

    revoked = client.post("/_sandbox/sixdot50/revoke-tokens").get_json()

    assert revoked == {"revoked": 1}
    assert client.get(f"/sixdot50/batches/{batch['id']}", headers=headers).status_code == 401
    assert client.get(f"/sixdot50/batches/{batch['id']}", headers=bearer(client)).status_code == 200


def test_settings_change_credentials_and_token_lifetime(client: FlaskClient) -> None:
    """Settings replace the credentials and the token lifetime; the secret is never shown."""
    changed = client.post(
        "/_sandbox/settings",
        json={"sixdot50": {"key": "k2", "secret": "s2", "token_ttl_seconds": 60}},
    ).get_json()

    assert changed["sixdot50"] == {"key": "k2", "secret": "***", "token_ttl_seconds": 60}
    old = client.post("/sixdot50/authentication/getToken", json=CREDENTIALS).get_json()
    new = client.post(
        "/sixdot50/authentication/getToken", json={"key": "k2", "secret": "s2"}
    ).get_json()
    assert old == {"success": False}
    assert new["expiresAt"] == "2026-11-21T12:01:00.000Z"


@pytest.mark.parametrize(
    "body",
    [
        {"sixdot50": {"token_ttl_seconds": -1}},
        {"sixdot50": {"secret": ""}},
        {"sixdot50": {"colour": "red"}},
        {"latency_ms": "slow"},
        {"nowhere": {}},
    ],
)
def test_invalid_settings_are_refused(client: FlaskClient, body: dict[str, Any]) -> None:
    """Settings the sandbox cannot honour answer 400 and change nothing."""
    response = client.post("/_sandbox/settings", json=body)

    assert response.status_code == 400
    assert client.get("/_sandbox/settings").get_json()["sixdot50"]["token_ttl_seconds"] == 900


def test_cancel_draft_batch_cancels_it_and_all_its_payments(client: FlaskClient) -> None:
    """Cancelling a DRAFT batch answers the Batch, CANCELLED, with the cancelled totals."""
    batch = seed(client, count=185, amount_each="100.00")

    response = client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=bearer(client))

    answer = exact(response)
    assert response.status_code == 200
    assert answer["statusCode"] == "CANCELLED"
    assert answer["summary"]["cancelledCount"] == 185
    assert answer["summary"]["cancelledAmount"] == Decimal("18500.00")
    payments = client.get(f"/_sandbox/sixdot50/batches/{batch['id']}").get_json()["payments"]
    assert {p["statusCode"] for p in payments} == {"CANCELLED"}
    assert effects(client) == {f"sixdot50:cancel_batch:{batch['id']}": 1}


def test_cancelling_twice_is_refused_and_takes_effect_once(client: FlaskClient) -> None:
    """A second cancel is a 4xx naming the status, and is not counted as an effect."""
    batch, headers = seed(client, count=2, amount_each="5.00"), bearer(client)
    client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=headers)

    again = client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=headers)

    assert again.status_code == 400
    assert again.get_json() == {"message": "Batch cannot be cancelled in status CANCELLED"}
    assert effects(client) == {f"sixdot50:cancel_batch:{batch['id']}": 1}


@pytest.mark.parametrize("status", ["OPEN", "CLOSED"])
def test_submitted_batch_cannot_be_cancelled(client: FlaskClient, status: str) -> None:
    """Once submitted (OPEN or CLOSED) a batch is refused for good and stays as it was."""
    batch = seed(client, count=3, amount_each="10.00")
    moved = client.post(
        f"/_sandbox/sixdot50/batches/{batch['id']}/status", json={"statusCode": status}
    )

    response = client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=bearer(client))

    assert moved.get_json()["statusCode"] == status
    assert response.status_code == 400
    assert response.get_json() == {"message": f"Batch cannot be cancelled in status {status}"}
    after = client.get(f"/sixdot50/batches/{batch['id']}", headers=bearer(client)).get_json()
    assert after["statusCode"] == status
    assert after["summary"]["cancelledCount"] == 0
    assert effects(client) == {}


def test_cancel_leaves_payments_that_settled_before_it(client: FlaskClient) -> None:
    """Payments already SETTLED stay settled; only DRAFT ones are cancelled."""
    batch = seed(client, count=185, amount_each="100.00", settled=3)

    response = client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=bearer(client))

    summary = exact(response)["summary"]
    assert (summary["cancelledCount"], summary["cancelledAmount"]) == (182, Decimal("18200.00"))
    assert (summary["settledCount"], summary["settledAmount"]) == (3, Decimal("300.00"))
    assert (summary["paymentsCount"], summary["paymentsAmount"]) == (185, Decimal("18500.00"))


@pytest.mark.parametrize("operation", ["cancel", "", "payments"])
def test_unknown_and_malformed_batch_ids(client: FlaskClient, operation: str) -> None:
    """An unknown GUID answers 404 "Batch not found"; a malformed id answers 400."""
    method = client.post if operation == "cancel" else client.get
    suffix = f"/{operation}" if operation else ""
    headers = bearer(client)

    unknown = method(f"/sixdot50/batches/{UNKNOWN_ID}{suffix}", headers=headers)
    malformed = method(f"/sixdot50/batches/not-a-guid{suffix}", headers=headers)

    assert (unknown.status_code, unknown.get_json()) == (404, {"message": "Batch not found"})
    assert malformed.status_code == 400
    assert "not-a-guid" in malformed.get_json()["message"]


def test_batch_ids_match_in_any_case_and_are_logged_canonically(client: FlaskClient) -> None:
    """An upper-case GUID finds the batch; call log and effects use the lower-case form."""
    batch = seed(client)

    response = client.post(
        f"/sixdot50/batches/{batch['id'].upper()}/cancel", headers=bearer(client)
    )

    assert response.status_code == 200
    assert effects(client) == {f"sixdot50:cancel_batch:{batch['id']}": 1}
    calls = client.get(f"/_sandbox/calls?target={batch['id']}").get_json()["calls"]
    assert len(calls) == 1


def test_get_batch_answers_the_documented_model(client: FlaskClient) -> None:
    """The Batch has the documented fields; amounts are JSON numbers, times UTC as the docs
    write them (no offset)."""
    batch = seed(client, name="Payroll", externalId="ext-1", count=185, amount_each="100.00")

    response = client.get(f"/sixdot50/batches/{batch['id']}", headers=bearer(client))

    text = response.get_data(as_text=True)
    answer = response.get_json()
    assert list(answer) == ["id", "name", "statusCode", "externalId", "createdAt", "summary"]
    assert list(answer["summary"]) == [
        "paymentsAmount", "paymentsCount", "referralsAmount", "settledAmount", "settledCount",
        "cancelledAmount", "cancelledCount",
    ]  # fmt: skip
    assert (answer["name"], answer["externalId"], answer["statusCode"]) == (
        "Payroll",
        "ext-1",
        "DRAFT",
    )
    assert answer["createdAt"] == "2026-11-21T12:00:00.000"
    assert '"paymentsAmount":18500,' in text.replace(" ", "")


@pytest.mark.parametrize(("seed_page", "status"), [("000", "CANCELLED"), ("003", "CLOSED")])
def test_batches_have_the_shape_of_the_providers_examples(
    client: FlaskClient, seed_page: str, status: str
) -> None:
    """A batch without externalId answers exactly the keys, key order and JSON types of the
    example in 6DOT50's own page (seed 000's cancel answer, seed 003's GET)."""
    example = example_body(seed_page, having="summary")
    batch = seed(client, count=2, amount_each="15.00", statusCode="DRAFT")
    sent = bearer(client)
    if status == "CANCELLED":
        answer = client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=sent).get_json()
    else:
        client.post(f"/_sandbox/sixdot50/batches/{batch['id']}/status",
                    json={"statusCode": "CLOSED"})
        answer = client.get(f"/sixdot50/batches/{batch['id']}", headers=sent).get_json()

    def shape(body: dict[str, Any]) -> list[tuple[str, type]]:
        return [(key, type(value)) for key, value in body.items() if key != "summary"] + [
            (key, type(value)) for key, value in body["summary"].items()]

    assert answer["statusCode"] == status
    assert shape(answer) == shape(example)
    assert datetime.fromisoformat(answer["createdAt"]).tzinfo is None


def test_list_payments_answers_every_documented_field(client: FlaskClient) -> None:
    """Payments carry the documented fields, in order, with their statuses."""
    batch = seed(
        client,
        payments=[
            {"amount": "12.50", "msisdn": "250788000001", "externalId": "p-1"},
            {"amount": 7.25, "statusCode": "SETTLED", "isMember": True},
            {"amount": "3", "statusCode": "DELETED", "referralAmount": "1.00"},
        ],
    )

    response = client.get(f"/sixdot50/batches/{batch['id']}/payments", headers=bearer(client))

    payments = exact(response)
    assert list(payments[0]) == [
        "id", "batchId", "msisdn", "amount", "firstname", "lastname", "externalId",
        "statusCode", "settledAt", "isMember", "referralAmount", "referralMsisdn", "createdAt",
    ]  # fmt: skip
    assert [p["statusCode"] for p in payments] == ["DRAFT", "SETTLED", "DELETED"]
    assert [p["amount"] for p in payments] == [Decimal("12.5"), Decimal("7.25"), Decimal("3")]
    assert payments[0]["msisdn"] == "250788000001"
    assert payments[0]["settledAt"] is None
    assert payments[1]["settledAt"] == "2026-11-21T12:00:00.000"
    assert {p["batchId"] for p in payments} == {batch["id"]}


def test_summary_is_computed_from_the_payments(client: FlaskClient) -> None:
    """DELETED payments are left out of the summary; referrals are summed."""
    batch = seed(
        client,
        payments=[
            {"amount": "10.00", "referralAmount": "0.50"},
            {"amount": "20.00", "statusCode": "SETTLED"},
            {"amount": "99.99", "statusCode": "DELETED", "referralAmount": "9.00"},
        ],
    )

    summary = batch["summary"]

    assert (summary["paymentsCount"], summary["paymentsAmount"]) == (2, 30.0)
    assert summary["referralsAmount"] == 0.5
    assert (summary["settledCount"], summary["settledAmount"]) == (1, 20.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2),
        min_size=1,
        max_size=20,
    )
)
def test_amounts_round_trip_exactly_as_decimal(amounts: list[Decimal]) -> None:
    """Whatever the amounts, a client parsing with Decimal reads back the exact total."""
    client = create_app().test_client()
    batch = seed(client, payments=[{"amount": str(a)} for a in amounts])

    response = client.get(f"/sixdot50/batches/{batch['id']}/payments", headers=bearer(client))
    summary = exact(client.get(f"/sixdot50/batches/{batch['id']}", headers=bearer(client)))

    assert [p["amount"] for p in exact(response)] == amounts
    assert summary["summary"]["paymentsAmount"] == sum(amounts)


@pytest.mark.parametrize("amount", ["1.001", 1.001, "abc", "-1.00", "0", 0, True, None, "NaN"])
def test_seeding_refuses_bad_amounts(client: FlaskClient, amount: object) -> None:
    """Amounts must be positive decimals with at most 2 places."""
    response = client.post("/_sandbox/sixdot50/batches", json={"payments": [{"amount": amount}]})

    assert response.status_code == 400
    assert "amount" in response.get_json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "red"},
        {"payments": [], "count": 1, "amount_each": "1.00"},
        {"count": 2, "amount_each": "1.00", "settled": 3},
        {"count": 1},
        {"statusCode": "SUBMITTED"},
        {"id": "not-a-guid"},
        {"payments": [{"amount": "1.00", "statusCode": "LOST"}]},
        {"payments": [{"amount": "1.00", "isMember": "yes"}]},
        {"payments": [{"amount": "1.00", "colour": "red"}]},
        {"payments": ["1.00"]},
        {"count": 1, "amount_each": "99999999999999.00"},
    ],
)
def test_seeding_refuses_invalid_batches(client: FlaskClient, body: dict[str, Any]) -> None:
    """A typo or an impossible batch is a 400, never silently ignored."""
    response = client.post("/_sandbox/sixdot50/batches", json=body)

    assert response.status_code == 400, response.get_json()


def test_seeding_a_batch_id_twice_conflicts(client: FlaskClient) -> None:
    """Batch ids are unique: seeding the same id again answers 409."""
    seed(client, id=UNKNOWN_ID)

    response = client.post("/_sandbox/sixdot50/batches", json={"id": UNKNOWN_ID})

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("status", "payment_status"),
    [("DRAFT", "DRAFT"), ("OPEN", "PENDING"), ("CLOSED", "SETTLED"), ("CANCELLED", "CANCELLED")],
)
def test_seeded_payments_follow_the_batch_status(
    client: FlaskClient, status: str, payment_status: str
) -> None:
    """Without an explicit statusCode, payments get the one their batch status implies."""
    batch = seed(client, statusCode=status, count=2, amount_each="1.00")

    payments = client.get(f"/_sandbox/sixdot50/batches/{batch['id']}").get_json()["payments"]

    assert {p["statusCode"] for p in payments} == {payment_status}


def test_call_log_records_calls_without_secrets(client: FlaskClient) -> None:
    """Calls are logged with operation, target and outcome, never credentials or tokens."""
    batch, headers = seed(client), bearer(client)
    client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=headers)

    calls = client.get("/_sandbox/calls").get_json()["calls"]

    assert [(c["operation"], c["status"], c["effect"]) for c in calls] == [
        ("get_token", 200, False),
        ("cancel_batch", 200, True),
    ]
    assert calls[1]["target"] == batch["id"]
    assert calls[1]["method"] == "POST"
    logged = json.dumps(calls)
    assert "sandbox-secret" not in logged
    assert headers["Authorization"][7:] not in logged


def test_unknown_provider_route_answers_json_404_and_is_logged(client: FlaskClient) -> None:
    """A wrong path under a provider answers that provider's JSON error and shows in the log."""
    response = client.get("/sixdot50/batch")

    assert (response.status_code, response.get_json()) == (404, {"message": "Not Found"})
    calls = client.get("/_sandbox/calls?provider=sixdot50").get_json()["calls"]
    assert [(c["path"], c["operation"], c["status"]) for c in calls] == [
        ("/sixdot50/batch", None, 404)
    ]
    assert client.get("/elsewhere").get_json()["error"]


def test_reset_forgets_batches_tokens_calls_effects_and_settings(client: FlaskClient) -> None:
    """After a reset the sandbox is as new."""
    batch, headers = seed(client), bearer(client)
    client.post(f"/sixdot50/batches/{batch['id']}/cancel", headers=headers)
    client.post("/_sandbox/settings", json={"latency_ms": 5, "sixdot50": {"token_ttl_seconds": 1}})

    assert client.post("/_sandbox/reset").get_json() == {"reset": True}

    assert client.get("/_sandbox/calls").get_json() == {"calls": []}
    assert effects(client) == {}
    assert client.get(f"/sixdot50/batches/{batch['id']}", headers=headers).status_code == 401
    assert client.get(f"/_sandbox/sixdot50/batches/{batch['id']}").status_code == 404
    shown = client.get("/_sandbox/settings").get_json()
    assert shown["latency_ms"] == 0
    assert shown["sixdot50"] == {"key": "sandbox-key", "secret": "***", "token_ttl_seconds": 900}


def test_each_app_has_its_own_state() -> None:
    """Two apps never share batches: no module-level state."""
    first, second = create_app().test_client(), create_app().test_client()
    batch = seed(first)

    assert second.get(f"/_sandbox/sixdot50/batches/{batch['id']}").status_code == 404
