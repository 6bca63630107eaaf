"""The 6DOT50 adapter and driver against 6DOT50's own pages (seeds 000 and 003), verbatim, and
against what those pages leave open (hypothesis): extra fields, left-out fields, number forms."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.providers import sixdot50_api as make_api
from tests.fakes.providers import sixdot50_token as token_response
from tests.seeds import example_body
from worker.domain.outcomes import Cancelled, Rejected
from worker.domain.states import Reason
from worker.providers import errors
from worker.providers.calls import CallRecord, NullObserver
from worker.providers.sixdot50.driver import SixDot50Driver

Answer = tuple[int, str]


def scripted(answers: list[Answer], seen: list[str] | None = None) -> Callable[
        [httpx.Request], httpx.Response]:
    """A transport handler answering each provider call with the next (status, raw body)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getToken"):
            return token_response(request)
        if seen is not None:
            seen.append(f"{request.method} {request.url.path}")
        status, text = answers.pop(0)
        return httpx.Response(status, content=text.encode(),
                              headers={"content-type": "application/json"})

    return handler


def page(prefix: str) -> tuple[uuid.UUID, str]:
    """The batch id and the example body of a seed page, as the page writes it."""
    body = example_body(prefix, having="summary")
    return uuid.UUID(body["id"]), json.dumps(body)


def test_seed_000_cancel_answer_is_cancelled_with_185_payments_of_18500() -> None:
    """The cancel answer of seed 000 parses to CANCELLED, 185 / 18500 cancelled, its naive
    createdAt read as UTC."""
    batch_id, text = page("000")

    batch = make_api(scripted([(200, text)])).cancel_batch(batch_id, NullObserver())

    assert batch.status == "CANCELLED" and batch.id == str(batch_id)
    assert batch.summary is not None
    assert (batch.summary.cancelled_count, batch.summary.cancelled_amount) == (185, 18500)
    assert (batch.summary.payments_count, batch.summary.payments_amount) == (185, 18500)
    assert isinstance(batch.summary.cancelled_amount, Decimal)
    assert batch.created_at == datetime(2022, 6, 14, 6, 26, 43, 473000, tzinfo=UTC)


def test_seed_003_batch_is_closed_with_its_summary() -> None:
    """GET /batches/{id} of seed 003 parses to CLOSED with 2 payments: 1 settled, 1 cancelled."""
    batch_id, text = page("003")

    batch = make_api(scripted([(200, text)])).get_batch(batch_id, NullObserver())

    assert batch.status == "CLOSED" and batch.summary is not None
    s = batch.summary
    assert (s.payments_count, s.payments_amount) == (2, Decimal(30))
    assert (s.settled_count, s.settled_amount, s.cancelled_count, s.cancelled_amount) == (
        1, Decimal(10), 1, Decimal(20))
    assert batch.created_at == datetime(2022, 10, 31, 8, 39, 12, 60000, tzinfo=UTC)


def test_the_cancel_answer_reconciles_the_leg_without_another_call() -> None:
    """Seed 000's answer adds up: the driver's outcome carries its summary as the evidence, one
    call made, and the raw body is kept for the attempt row."""
    batch_id, text = page("000")
    seen: list[str] = []
    records: list[CallRecord] = []
    driver = SixDot50Driver(make_api(scripted([(200, text)], seen), records))

    outcome = driver.cancel({"batch_id": str(batch_id)}, NullObserver())

    assert isinstance(outcome, Cancelled) and not outcome.already
    assert outcome.evidence is not None and outcome.evidence.complete
    assert (outcome.evidence.expected.count, outcome.evidence.reported.cancelled_amount) == (
        185, Decimal(18500))
    assert seen == [f"POST /api/batches/{batch_id}/cancel"]
    assert json.loads(records[-1].body or "") == json.loads(text)
    assert records[0].body is None  # the token answer is never kept


@pytest.mark.parametrize("status", [400, 409, 422])
def test_any_refusal_is_decided_by_reading_the_batch(status: int) -> None:
    """A 400, 409 or 422 answering the cancel is followed by a read; seed 003's CLOSED batch
    is rejected/not_cancellable."""
    batch_id, text = page("003")
    seen: list[str] = []
    driver = SixDot50Driver(make_api(scripted([(status, '{"message": "no"}'), (200, text)], seen)))

    outcome = driver.cancel({"batch_id": str(batch_id)}, NullObserver())

    assert isinstance(outcome, Rejected) and outcome.reason is Reason.NOT_CANCELLABLE
    assert seen == [f"POST /api/batches/{batch_id}/cancel", f"GET /api/batches/{batch_id}"]


def test_a_refusal_of_a_batch_already_cancelled_reconciles_from_the_read() -> None:
    """Refused, and the read shows seed 000's CANCELLED batch: already cancelled, with its
    summary as the evidence."""
    batch_id, text = page("000")
    driver = SixDot50Driver(make_api(scripted([(409, "{}"), (200, text)])))

    outcome = driver.cancel({"batch_id": str(batch_id)}, NullObserver())

    assert isinstance(outcome, Cancelled) and outcome.already
    assert outcome.evidence is not None and outcome.evidence.reported.cancelled_count == 185


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_answering_the_cancel_is_ambiguous(status: int) -> None:
    """A 5xx may hide a cancel that happened: ambiguous for the cancel, not for a read."""
    batch_id, _text = page("000")
    api = make_api(scripted([(status, "{}"), (status, "{}")]))

    with pytest.raises(errors.ProviderUnavailable) as cancelling:
        api.cancel_batch(batch_id, NullObserver())
    with pytest.raises(errors.ProviderUnavailable) as reading:
        api.get_batch(batch_id, NullObserver())

    assert cancelling.value.ambiguous and not reading.value.ambiguous


def test_a_success_that_is_not_cancelled_is_read_before_any_new_cancel() -> None:
    """A 2xx answering a batch still DRAFT says nothing certain: ambiguous, never rejected."""
    batch_id, text = page("000")
    driver = SixDot50Driver(make_api(scripted([(200, text.replace("CANCELLED", "DRAFT"))])))

    with pytest.raises(errors.MalformedResponse) as caught:
        driver.cancel({"batch_id": str(batch_id)}, NullObserver())

    assert caught.value.ambiguous and caught.value.retryable


# --- what the pages leave open --------------------------------------------------------------

KNOWN = {"id", "name", "statusCode", "externalId", "createdAt", "summary", "paymentsAmount",
         "paymentsCount", "referralsAmount", "settledAmount", "settledCount", "cancelledAmount",
         "cancelledCount"}
NUMBERS = sorted(KNOWN - {"id", "name", "statusCode", "externalId", "createdAt", "summary"})
NUMBER_FORMS = st.sampled_from(["int", "float", "string", "string2"])
EXTRA = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda key: key.casefold() not in {
        k.casefold() for k in KNOWN}),
    st.one_of(st.none(), st.integers(), st.text(alphabet="abc xyz", max_size=8), st.booleans(),
              st.lists(st.integers(), max_size=2)),
    max_size=4)


def rendered(value: int, form: str) -> str:
    """A number as a provider might write it: 18500, 18500.0, "18500" or "18500.00"."""
    return {"int": str(value), "float": f"{value}.0", "string": f'"{value}"',
            "string2": f'"{value}.00"'}[form]


def body_text(body: dict[str, Any], forms: dict[str, str]) -> str:
    """JSON text of ``body`` with each summary number in its chosen form."""
    summary = {k: f"@{k}@" if k in NUMBERS else v for k, v in body["summary"].items()}
    marked = {**body, "summary": summary}
    text = json.dumps(marked)
    return re.sub(r'"@(\w+)@"',
                  lambda m: rendered(body["summary"][m[1]], forms.get(m[1], "int")), text)


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.sampled_from(["000", "003"]),
    forms=st.dictionaries(st.sampled_from(NUMBERS), NUMBER_FORMS),
    extra_top=EXTRA,
    extra_summary=EXTRA,
    left_out=st.sets(st.sampled_from(["id", "name", "externalId", "createdAt"])),
    zone=st.sampled_from(["", "Z", "+00:00"]),
)
def test_what_the_pages_leave_open_changes_nothing(
    prefix: str, forms: dict[str, str], extra_top: dict[str, Any],
    extra_summary: dict[str, Any], left_out: set[str], zone: str,
) -> None:
    """Extra fields, left-out fields the decision does not need, numbers as ints, floats or
    strings, and times with or without a zone: the same status, figures and instant."""
    example = example_body(prefix, having="summary")
    batch_id = uuid.UUID(example["id"])
    varied = {k: v for k, v in example.items() if k not in left_out} | extra_top
    varied["summary"] = example["summary"] | extra_summary
    if "createdAt" in varied:
        varied["createdAt"] += zone
    expected = make_api(scripted([(200, json.dumps(example))])).get_batch(
        batch_id, NullObserver())

    batch = make_api(scripted([(200, body_text(varied, forms))])).get_batch(
        batch_id, NullObserver())

    assert (batch.id, batch.status, batch.summary) == (expected.id, expected.status,
                                                       expected.summary)
    assert batch.created_at == (None if "createdAt" in left_out else expected.created_at)
