"""What a round makes of a leg: pure decisions over its outcome, error or lease.

``worker.services.rounds`` makes the calls and hands their result here; the decision is the
leg's next state, the columns that change with it, and when to run the leg again if at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.domain.evidence_wait import start_wait
from worker.domain.outcomes import (
    AwaitingCallbacks,
    Cancelled,
    Outcome,
    RefundRequested,
    Rejected,
)
from worker.domain.reconciliation import LegEvidence, leg_reconciliation
from worker.domain.states import CLAIMABLE_LEG_STATES, LegState, Reason
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    NotCancellable,
    NotFound,
    ProviderError,
    RateLimited,
)
from worker.providers.retry import retry_delay, should_retry

# A message that arrives this early for a leg scheduled later is a stray duplicate, not its turn.
EARLY_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    max_attempts: int

    def pause_budget(self) -> timedelta:
        """How long pauses may hold a leg without spending its retries: its whole budget."""
        return timedelta(seconds=self.max_attempts * self.max_seconds)


@dataclass(frozen=True, slots=True)
class RoundDecision:
    """A leg's next state, the columns that change with it, and when to run it again."""

    state: LegState
    values: dict[str, Any] = field(default_factory=dict)
    retry_in: float | None = None
    evidence: LegEvidence | None = None
    # A 429 asks every worker to slow down for ``retry_in`` seconds.
    pause_provider: bool = False


@dataclass(frozen=True, slots=True)
class LegAtClaim:
    """What deciding whether to claim a leg reads of it."""

    state: LegState
    needs_resolve: bool
    next_attempt_at: datetime | None
    lease_expires_at: datetime | None


def claimable(leg: LegAtClaim, now: datetime) -> bool | None:
    """None if the leg is not ours to take now; else whether to read its state first."""
    if leg.state in CLAIMABLE_LEG_STATES:
        if leg.next_attempt_at is not None and leg.next_attempt_at > now + EARLY_SLACK:
            return None
        return leg.needs_resolve or leg.state is LegState.UNKNOWN
    if leg.state is LegState.IN_FLIGHT and (
        leg.lease_expires_at is None or leg.lease_expires_at < now
    ):
        return True  # its holder died mid-call: whether that call took effect is unknown
    return None


def reason_for(err: ProviderError) -> Reason:
    if isinstance(err, AuthFailed):
        return Reason.AUTH_FAILED
    if isinstance(err, NotFound):
        return Reason.NOT_FOUND
    if isinstance(err, NotCancellable):
        return Reason.NOT_CANCELLABLE
    if isinstance(err, InvalidRequest):
        return Reason.INVALID_REQUEST
    return Reason.PROVIDER_ERROR


def after_error(err: ProviderError, *, retries: int, resolve_first: bool, policy: RetryPolicy,
                now: datetime, rng: Callable[[], float],
                pause_provider: bool = True) -> RoundDecision:
    """A provider error: rejected if retrying cannot help, failed once the retries are spent,
    else retried after a backoff (from an unknown state if the call may have taken effect)."""
    if not should_retry(err):
        return RoundDecision(LegState.REJECTED,
                             {"reason": reason_for(err).value, "detail": str(err)})
    retries += 1
    if retries >= policy.max_attempts:
        return RoundDecision(LegState.FAILED, {"reason": Reason.RETRIES_EXHAUSTED.value,
                                               "detail": f"{retries} tries; last: {err}"})
    delay = retry_delay(err, retries - 1, policy.base_seconds, policy.max_seconds, rng)
    # A failed read while resolving leaves the leg as unresolved as it was.
    ambiguous = err.ambiguous or resolve_first
    values: dict[str, Any] = {
        "retries": retries,
        "needs_resolve": ambiguous,
        "detail": str(err),
        "next_attempt_at": now + timedelta(seconds=delay),
    }
    state = LegState.UNKNOWN if ambiguous else LegState.RETRYING
    return RoundDecision(state, values, retry_in=delay,
                         pause_provider=isinstance(err, RateLimited) and pause_provider)


def paused(resolve_first: bool, seconds: float, now: datetime) -> RoundDecision:
    """The provider asked everyone to slow down: wait without spending a retry."""
    state = LegState.UNKNOWN if resolve_first else LegState.RETRYING
    return RoundDecision(state, {"needs_resolve": resolve_first,
                                 "next_attempt_at": now + timedelta(seconds=seconds)},
                         retry_in=seconds)


def given_back(claimed_from: LegState, needs_resolve: bool, calls_made: int,
               now: datetime) -> RoundDecision:
    """The lease ran short. Before any call, the leg goes back to the state it was claimed
    from, untouched; after some (a cancel may have been sent), its target is read before any
    new cancel. Either way it is dispatched again at once."""
    values: dict[str, Any] = {"next_attempt_at": now, "needs_resolve": True}
    if not calls_made and claimed_from in CLAIMABLE_LEG_STATES:
        state = claimed_from
        values["needs_resolve"] = needs_resolve
    else:
        state = LegState.UNKNOWN
    return RoundDecision(state, values, retry_in=0.0)


def after_outcome(leg_id: str, outcome: Outcome, evidence: LegEvidence | None, now: datetime,
                  callback_timeout_seconds: float) -> RoundDecision:
    """The provider's answer decided: cancelled, rejected, or waiting on callbacks."""
    values: dict[str, Any]
    if isinstance(outcome, Cancelled):
        state = LegState.CANCELLED
        values = {"already_cancelled": outcome.already, "provider_reference": outcome.reference,
                  "detail": outcome.detail, "reason": None}
    elif isinstance(outcome, Rejected):
        state = LegState.REJECTED
        values = {"reason": outcome.reason.value, "detail": outcome.detail}
    else:
        assert isinstance(outcome, AwaitingCallbacks | RefundRequested)
        state = (LegState.AWAITING_CALLBACKS if isinstance(outcome, AwaitingCallbacks)
                 else LegState.REFUND_REQUESTED)
        values = {
            "provider_reference": outcome.reference,
            "expected_count": outcome.expected_count,
            "already_cancelled": outcome.already,
            "at_risk": outcome.at_risk,
            "detail": outcome.detail,
            # The callbacks have until then; the sweep starts recovery after it.
            "next_attempt_at": now + timedelta(seconds=callback_timeout_seconds),
        }
    if evidence is not None and evidence.complete:
        values["reconciliation"] = leg_reconciliation(leg_id, evidence)
    elif state is LegState.CANCELLED:
        values.update(start_wait(evidence, now, callback_timeout_seconds))
    return RoundDecision(state, values, evidence=evidence)
