"""The Bambora adapter and driver against Bambora's own page (seed 002), verbatim, and against
what it leaves open (hypothesis): extra fields, where amount and currency are, number forms."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.providers import bambora_api as make_api
from tests.fakes.providers import bambora_token as token
from tests.seeds import example_body
from worker.domain.outcomes import Cancelled
from worker.providers import errors
from worker.providers.bambora.driver import NO_CURRENCY, BamboraDriver
from worker.providers.calls import CallRecord, NullObserver

TARGET = {"merchant": "T123456789", "payment_reference": "order-4711"}


def scripted(answers: list[tuple[int, Any]], seen: list[str] | None = None) -> Callable[
        [httpx.Request], httpx.Response]:
    """A transport handler answering each API call with the next (status, JSON body)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return token(request)
        if seen is not None:
            seen.append(f"{request.method} {request.url.path}")
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    return handler


def seed_payment() -> dict[str, Any]:
    body: dict[str, Any] = example_body("002", having="operations")
    return body


class Recorder:
    """A CallObserver keeping each call's record (what the attempt rows get)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def before(self, operation: str) -> object:
        return None

    def after(self, handle: object, record: CallRecord) -> None:
        self.records.append(record)


def test_seed_002_answering_the_cancel_with_201_is_a_cancel() -> None:
    """Seed 002's body answering the cancel with 201 is Canceled, under the reference we sent;
    its currency "string" is unusable, which makes the figures count the payment only."""
    seen: list[str] = []
    api = make_api(scripted([(201, seed_payment())], seen))

    payment = api.cancel_payment(TARGET["merchant"], TARGET["payment_reference"],
                                 NullObserver())
    outcome = BamboraDriver(make_api(scripted([(201, seed_payment())]))).cancel(
        TARGET, NullObserver())

    assert (payment.state, payment.reference) == ("Canceled", "order-4711")
    assert (payment.amount, payment.currency, payment.amount_minor) == (None, None, 1000)
    assert seen == ["POST /v1/merchants/T123456789/payments/order-4711/cancel/"]
    assert isinstance(outcome, Cancelled) and not outcome.already
    assert outcome.reference == "order-4711"
    assert outcome.evidence is not None and outcome.evidence.complete
    assert (outcome.evidence.currency, outcome.evidence.reported.cancelled_count) == (
        NO_CURRENCY, 1)
    assert outcome.detail is not None and "1000 minor units" in outcome.detail


def test_with_a_real_currency_the_authorize_operation_gives_the_amount() -> None:
    """Amount and currency come from the authorize operation: 1000 SEK minor units is 10.00."""
    body = seed_payment()
    body["operations"][0]["currency"] = "sek"

    outcome = BamboraDriver(make_api(scripted([(201, body)]))).cancel(TARGET, NullObserver())

    assert isinstance(outcome, Cancelled) and outcome.evidence is not None
    assert (outcome.evidence.currency, outcome.evidence.reported.cancelled_amount) == (
        "SEK", Decimal("10.00"))
    assert outcome.detail is None


def test_the_kept_body_masks_the_card_token() -> None:
    """The attempt row keeps the answer as received, its card token masked."""
    body = seed_payment()
    body["operations"][0]["token"] = "tok_secret_card"
    calls = Recorder()

    make_api(scripted([(201, body)])).cancel_payment("T1", "r", calls)

    kept = json.loads(calls.records[0].body or "")
    assert kept["operations"][0]["token"] == "***"
    assert kept["operations"][0]["amount"] == 1000 and kept["state"] == "Canceled"
    assert "tok_secret_card" not in repr(calls.records)


def test_a_refusal_while_the_api_reads_authorized_is_tried_again_not_final() -> None:
    """A cancel refused (422) while GET still reads Authorized (a portal cancel) is retryable,
    and says what a person can do about it."""
    authorized = seed_payment() | {"state": "Authorized"}
    refusal = {"type": "https://api.bambora.com/problems/payments/"
                       "invalid_payment_state_transition", "title": "t", "detail": "d",
               "status": 422}
    driver = BamboraDriver(make_api(scripted([(422, refusal), (200, authorized)])))

    with pytest.raises(errors.RefusedWhileCancellable) as caught:
        driver.cancel(TARGET, NullObserver())

    assert caught.value.retryable and not caught.value.ambiguous
    assert "merchant portal" in str(caught.value)
    assert caught.value.provider_code == "invalid_payment_state_transition"


def test_a_refusal_of_a_payment_that_reads_canceled_is_already_cancelled() -> None:
    """Refused, and seed 002's Canceled payment read back: cancelled, already_cancelled."""
    driver = BamboraDriver(make_api(scripted([(422, {"type": "x"}), (200, seed_payment())])))

    outcome = driver.cancel(TARGET, NullObserver())

    assert isinstance(outcome, Cancelled) and outcome.already


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_answering_the_cancel_is_ambiguous(status: int) -> None:
    """A 5xx answering the cancel may hide a cancel that happened: read before sending again."""
    api = make_api(scripted([(status, {}), (status, {})]))

    with pytest.raises(errors.ProviderUnavailable) as cancelling:
        api.cancel_payment("T1", "r", NullObserver())
    with pytest.raises(errors.ProviderUnavailable) as reading:
        api.get_payment("T1", "r", NullObserver())

    assert cancelling.value.ambiguous and not reading.value.ambiguous


def test_a_success_still_reading_authorized_is_ambiguous() -> None:
    """A 201 whose payment still reads Authorized is read again before any new cancel."""
    driver = BamboraDriver(make_api(scripted([(201, seed_payment() | {"state": "Authorized"})])))

    with pytest.raises(errors.MalformedResponse) as caught:
        driver.cancel(TARGET, NullObserver())

    assert caught.value.ambiguous


def test_an_answer_without_a_state_is_garbled_and_ambiguous() -> None:
    """The state is what the document names and the decision needs: without it, no decision."""
    body = {k: v for k, v in seed_payment().items() if k != "state"}

    with pytest.raises(errors.MalformedResponse) as caught:
        make_api(scripted([(201, body)])).cancel_payment("T1", "r", NullObserver())

    assert caught.value.ambiguous


# --- what the page leaves open --------------------------------------------------------------

CURRENCIES = st.sampled_from(["SEK", "EUR", "JPY", "KWD", "sek", "string", "", None])
EXTRA = st.dictionaries(
    st.text(alphabet="abcdefghijklmnop_", min_size=1, max_size=10).filter(
        lambda key: key not in {"state", "operations", "amount", "currency", "type", "token"}),
    st.one_of(st.none(), st.integers(), st.text(max_size=6), st.booleans()), max_size=3)


def amount_as(minor: int, form: str) -> Any:
    return {"int": minor, "float": float(minor), "string": str(minor),
            "string2": f"{minor}.0"}[form]


@settings(max_examples=80, deadline=None)
@given(
    state=st.sampled_from(["Canceled", "canceled", "Cancelled", "Authorized", "Captured",
                           "Declined"]),
    minor=st.integers(min_value=0, max_value=10**9),
    form=st.sampled_from(["int", "float", "string", "string2"]),
    currency=CURRENCIES,
    authorize=st.sampled_from(["Authorize token", "Authorize", "authorization", None]),
    extra=EXTRA,
    op_extra=EXTRA,
    reverse=st.booleans(),
)
def test_what_the_page_leaves_open_never_changes_the_decision(
    state: str, minor: int, form: str, currency: str | None, authorize: str | None,
    extra: dict[str, Any], op_extra: dict[str, Any], reverse: bool,
) -> None:
    """Whatever the authorize operation is called (or if it is missing), whatever form its
    amount takes, whatever extra fields come: the state decides, and a usable currency gives
    the exact amount."""
    body = seed_payment() | extra | {"state": state}
    operations = [op | op_extra for op in body["operations"]]
    if authorize is None:
        operations = operations[1:]
    else:
        operations[0] |= {"type": authorize, "amount": amount_as(minor, form),
                          "currency": currency}
    body["operations"] = operations[::-1] if reverse else operations
    seen: list[str] = []

    payment = make_api(scripted([(200, body)], seen)).get_payment("T1", "order-1",
                                                                 NullObserver())

    assert payment.reference == "order-1" and len(seen) == 1
    canceled = state.casefold() in ("canceled", "cancelled")
    assert (payment.state == "Canceled") == canceled
    usable = authorize is not None and currency not in ("string", "", None)
    if usable:
        assert currency is not None
        exponent = {"JPY": 0, "KWD": 3}.get(currency.upper(), 2)
        assert payment.amount == Decimal(minor).scaleb(-exponent)
        assert payment.currency == currency.upper()
    else:
        assert payment.amount is None
    if canceled:
        outcome = BamboraDriver(make_api(scripted([(201, body)]))).cancel(
            TARGET, NullObserver())
        assert isinstance(outcome, Cancelled) and outcome.evidence is not None
        assert outcome.evidence.currency == (payment.currency if usable else NO_CURRENCY)

