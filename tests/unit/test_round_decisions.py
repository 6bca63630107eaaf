"""The pure decisions of a round (worker.domain.rounds): no ledger, no provider, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from worker.domain.outcomes import AwaitingCallbacks, Cancelled, RefundRequested, Rejected
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.rounds import (
    EARLY_SLACK,
    LegAtClaim,
    RetryPolicy,
    after_error,
    after_outcome,
    claimable,
    given_back,
    paused,
    reason_for,
)
from worker.domain.states import LegState, Reason
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    NotCancellable,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    TransportError,
)

DETAIL = "sixdot50 cancel_batch: boom"  # what a provider error says of itself
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(2, 300, 3)
COMPLETE = LegEvidence(Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
                       Reported(cancelled_count=2, cancelled_amount=Decimal("200.00")))
SHORT = LegEvidence(Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
                    Reported(cancelled_count=1, cancelled_amount=Decimal("100.00")))


def error(kind: type[ProviderError], **extra: object) -> ProviderError:
    return kind("boom", provider="sixdot50", operation="cancel_batch", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "reason"), [
    (AuthFailed, Reason.AUTH_FAILED), (NotFound, Reason.NOT_FOUND),
    (NotCancellable, Reason.NOT_CANCELLABLE), (InvalidRequest, Reason.INVALID_REQUEST),
    (ProviderUnavailable, Reason.PROVIDER_ERROR),
])
def test_each_refusal_has_its_reason(kind: type[ProviderError], reason: Reason) -> None:
    """Every kind of provider error maps to the reason the contract names for it."""
    assert reason_for(error(kind)) is reason


def test_a_permanent_refusal_rejects_the_leg_without_retry() -> None:
    """An error retrying cannot fix ends the leg rejected, with its reason and no retry."""
    decision = after_error(error(NotFound), retries=0, resolve_first=False, policy=POLICY,
                           now=NOW, rng=lambda: 1.0)
    assert (decision.state, decision.retry_in) == (LegState.REJECTED, None)
    assert decision.values == {"reason": "not_found", "detail": DETAIL}


def test_a_transient_error_retries_after_a_backoff() -> None:
    """Given a 503 on the first try, the leg retries 2 s later, one retry spent."""
    decision = after_error(error(ProviderUnavailable), retries=0, resolve_first=False,
                           policy=POLICY, now=NOW, rng=lambda: 1.0)
    assert (decision.state, decision.retry_in, decision.pause_provider) == (
        LegState.RETRYING, 2.0, False)
    assert decision.values == {"retries": 1, "needs_resolve": False, "detail": DETAIL,
                               "next_attempt_at": NOW + timedelta(seconds=2)}


def test_an_ambiguous_error_is_read_before_any_new_cancel() -> None:
    """A timeout after sending leaves the leg unknown, to be read first."""
    lost = error(TransportError, ambiguous=True)
    decision = after_error(lost, retries=1, resolve_first=False, policy=POLICY, now=NOW,
                           rng=lambda: 1.0)
    assert (decision.state, decision.values["needs_resolve"], decision.retry_in) == (
        LegState.UNKNOWN, True, 4.0)


def test_the_last_retry_ends_the_leg_failed() -> None:
    """With the retries spent, the leg ends failed / retries_exhausted."""
    decision = after_error(error(ProviderUnavailable), retries=2, resolve_first=False,
                           policy=POLICY, now=NOW, rng=lambda: 1.0)
    assert decision.state is LegState.FAILED
    assert decision.values == {"reason": "retries_exhausted", "detail": f"3 tries; last: {DETAIL}"}


def test_a_429_pauses_the_provider_unless_told_not_to() -> None:
    """A 429 asks every worker to pause; the pause that already held the leg does not again."""
    limited = RateLimited("slow down", provider="sixdot50", operation="cancel_batch",
                          retry_after=30)
    first = after_error(limited, retries=0, resolve_first=False, policy=POLICY, now=NOW,
                        rng=lambda: 1.0)
    held = after_error(limited, retries=0, resolve_first=False, policy=POLICY, now=NOW,
                       rng=lambda: 1.0, pause_provider=False)
    assert (first.pause_provider, held.pause_provider) == (True, False)


def test_a_pause_spends_no_retry() -> None:
    """A paused provider: the leg waits in its state, its retries untouched."""
    decision = paused(True, 30, NOW)
    assert (decision.state, decision.retry_in) == (LegState.UNKNOWN, 30)
    assert decision.values == {"needs_resolve": True,
                               "next_attempt_at": NOW + timedelta(seconds=30)}


def test_a_leg_given_back_before_any_call_is_untouched() -> None:
    """No call made: the leg goes back to its state as claimed; after a call, it is read first."""
    untouched = given_back(LegState.PENDING, False, 0, NOW)
    called = given_back(LegState.PENDING, False, 1, NOW)
    assert (untouched.state, untouched.values["needs_resolve"]) == (LegState.PENDING, False)
    assert (called.state, called.values["needs_resolve"]) == (LegState.UNKNOWN, True)
    assert untouched.retry_in == called.retry_in == 0.0


def test_which_legs_are_ours_to_claim() -> None:
    """Due claimable legs are ours (read first if unknown); early or leased ones are not."""
    due = LegAtClaim(LegState.PENDING, False, NOW, None)
    early = LegAtClaim(LegState.RETRYING, False, NOW + EARLY_SLACK * 2, None)
    unknown = LegAtClaim(LegState.UNKNOWN, False, None, None)
    leased = LegAtClaim(LegState.IN_FLIGHT, False, None, NOW + timedelta(seconds=1))
    expired = LegAtClaim(LegState.IN_FLIGHT, False, None, NOW - timedelta(seconds=1))
    final = LegAtClaim(LegState.CANCELLED, False, None, None)
    assert [claimable(leg, NOW) for leg in (due, early, unknown, leased, expired, final)] == [
        False, None, True, None, True, None]


def test_a_cancel_with_complete_figures_reconciles_the_leg() -> None:
    """Cancelled with figures that add up: the leg's reconciliation is written at once."""
    decision = after_outcome("leg-1", Cancelled(already=True, reference="b1"), COMPLETE, NOW, 900)
    assert decision.state is LegState.CANCELLED
    assert decision.values["already_cancelled"] is True and decision.values["reason"] is None
    assert decision.values["reconciliation"]["reported"]["cancelled_count"] == 2


def test_a_cancel_with_short_figures_starts_the_bounded_wait() -> None:
    """Figures not adding up yet: no reconciliation, a read an interval later, a deadline."""
    decision = after_outcome("leg-1", Cancelled(already=False), SHORT, NOW, 900)
    assert "reconciliation" not in decision.values
    assert decision.values["evidence_deadline"] == NOW + timedelta(seconds=900)
    assert decision.values["next_attempt_at"] == NOW + timedelta(seconds=90)


def test_a_refusal_and_a_wait_for_callbacks() -> None:
    """Rejected keeps its reason; an accepted Paywall cancel waits until the callback deadline."""
    rejected = after_outcome("leg-1", Rejected(Reason.NOT_CANCELLABLE, "closed"), None, NOW, 900)
    waiting = after_outcome("leg-1", AwaitingCallbacks("9", 3), None, NOW, 900)
    refund = after_outcome("leg-1", RefundRequested("9", 3), None, NOW, 900)
    assert rejected.values == {"reason": "not_cancellable", "detail": "closed"}
    assert (waiting.state, refund.state) == (LegState.AWAITING_CALLBACKS,
                                             LegState.REFUND_REQUESTED)
    assert waiting.values["next_attempt_at"] == NOW + timedelta(seconds=900)
    assert waiting.values["expected_count"] == 3
