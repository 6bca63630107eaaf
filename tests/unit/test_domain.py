"""The domain: the producer message, states, money and reconciliation arithmetic."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from worker.domain.jobs import derive_job_state
from worker.domain.money import MoneyError, format_amount, parse_decimal
from worker.domain.reconciliation import (
    Expectation,
    Figures,
    LegEvidence,
    LegView,
    ReconciliationState,
    Reported,
    Source,
    reconcile,
)
from worker.domain.request import CancellationRequest, invalid_job_id, job_id_for_key
from worker.domain.states import JobState, LegState, can_transition

BATCH = "f945d71c-b00f-4e77-8175-253093157a2f"


def _request(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "idempotency_key": "order-4711-cancel",
        "legs": [{"provider": "sixdot50", "batch_id": BATCH}],
    }
    body.update(overrides)
    return body


def _evidence(count: int, amount: str, cancelled: int, cancelled_amount: str) -> LegEvidence:
    return LegEvidence(
        Source.SIXDOT50_SUMMARY,
        "ZAR",
        Figures(count, Decimal(amount)),
        Reported(cancelled_count=cancelled, cancelled_amount=Decimal(cancelled_amount)),
    )


def test_job_id_is_the_contracts_uuid5() -> None:
    """The job id is uuid5(NAMESPACE_URL, 'cancelflow:' + key), computable by any producer."""
    assert job_id_for_key("k") == uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:k")
    assert invalid_job_id("ab") == uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:invalid:ab")


def test_valid_request_parses_with_defaults() -> None:
    """A minimal request gets on_cutoff=reject and mirror=false."""
    request = CancellationRequest.model_validate(_request())
    assert request.on_cutoff == "reject"
    assert request.mirror is False
    assert str(request.legs[0].batch_id) == BATCH  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        {"idempotency_key": ""},
        {"idempotency_key": "x" * 201},
        {"legs": []},
        {"legs": [{"provider": "acme", "id": "1"}]},
        {"legs": [{"provider": "sixdot50", "batch_id": "not-a-guid"}]},
        {"legs": [{"provider": "sixdot50", "batchid": BATCH}]},
        {"mirror": "yes"},
        {"on_cutoff": "ignore"},
        {"expect": {"count": "185", "amount": "1.00"}},
        {"expect": {"count": 1, "amount": 1.5}},
    ],
)
def test_ill_formed_requests_are_refused(change: dict[str, object]) -> None:
    """Missing, ill-typed or unknown fields and unknown providers are validation errors."""
    with pytest.raises(ValidationError):
        CancellationRequest.model_validate(_request(**change))


def test_more_than_ten_thousand_legs_is_refused() -> None:
    """A job holds at most 10,000 legs."""
    legs = [{"provider": "bambora", "merchant": "T1", "payment_reference": str(i)}
            for i in range(10_001)]
    with pytest.raises(ValidationError):
        CancellationRequest.model_validate(_request(legs=legs))


def test_final_states_have_no_way_out() -> None:
    """Final leg states never change; in_flight can reach every outcome."""
    for final in (LegState.CANCELLED, LegState.REFUNDED, LegState.REJECTED, LegState.FAILED):
        assert not any(can_transition(final, other) for other in LegState)
    assert can_transition(LegState.IN_FLIGHT, LegState.UNKNOWN)
    assert not can_transition(LegState.PENDING, LegState.CANCELLED)


def test_amounts_are_decimals_never_floats() -> None:
    """Provider numbers become exact Decimals and print with two places."""
    assert parse_decimal("18500.00") == Decimal("18500.00")
    assert parse_decimal(0.1) == Decimal("0.1")
    assert format_amount(Decimal("18500")) == "18500.00"
    with pytest.raises(MoneyError):
        parse_decimal("NaN")


def test_reconciliation_matches_a_full_cancel() -> None:
    """A leg that cancelled everything it was asked matches, and the expect totals agree."""
    legs = [LegView("l1", LegState.CANCELLED, _evidence(185, "18500.00", 185, "18500.00"))]
    result = reconcile(legs, expect=Expectation(185, Decimal("18500.00")))
    assert result.state is ReconciliationState.MATCHED
    assert result.differences == []


def test_reconciliation_lists_each_difference() -> None:
    """A settled payment shows as cancelled_count and cancelled_amount differences."""
    legs = [LegView("l1", LegState.CANCELLED, _evidence(3, "300.00", 2, "200.00"))]
    result = reconcile(legs)
    assert result.state is ReconciliationState.MISMATCH
    assert [(d.field, d.expected, d.reported) for d in result.differences] == [
        ("cancelled_count", "3", "2"),
        ("cancelled_amount", "300.00", "200.00"),
    ]


def test_reconciliation_waits_for_evidence() -> None:
    """A cancelled leg without figures keeps the reconciliation pending."""
    assert reconcile([LegView("l1", LegState.CANCELLED, None)]).state is (
        ReconciliationState.PENDING
    )


def test_mirror_requires_legs_to_agree() -> None:
    """Mirrored legs must have cancelled the same count and amount."""
    legs = [
        LegView("a", LegState.CANCELLED, _evidence(2, "20.00", 2, "20.00")),
        LegView("b", LegState.CANCELLED, _evidence(2, "30.00", 2, "30.00")),
    ]
    result = reconcile(legs, mirror=True)
    assert [(d.leg, d.field) for d in result.differences] == [("b", "cancelled_amount")]


def test_job_state_follows_its_legs() -> None:
    """Failed beats mismatch; a job waits in_progress until evidence is in."""
    done = ReconciliationState.MATCHED
    assert derive_job_state([LegState.PENDING], ReconciliationState.PENDING) is JobState.ACCEPTED
    assert derive_job_state([LegState.IN_FLIGHT, LegState.PENDING], done) is JobState.IN_PROGRESS
    assert derive_job_state([LegState.AWAITING_CALLBACKS, LegState.CANCELLED], done) is (
        JobState.AWAITING_CALLBACKS
    )
    assert derive_job_state([LegState.CANCELLED, LegState.REJECTED], done) is JobState.FAILED
    assert derive_job_state([LegState.CANCELLED], ReconciliationState.PENDING) is (
        JobState.IN_PROGRESS
    )
    assert derive_job_state([LegState.CANCELLED], ReconciliationState.MISMATCH) is (
        JobState.MISMATCH
    )
    assert derive_job_state([LegState.CANCELLED], done) is JobState.RECONCILED
