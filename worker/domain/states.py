"""Leg and job states, reason codes and the legal transitions between states.

The enum values are the contract's strings: they are what the API, the CLI and the ledger show.
"""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    SIXDOT50 = "sixdot50"
    PAYWALL = "paywall"
    BAMBORA = "bambora"


class LegState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    UNKNOWN = "unknown"
    AWAITING_CALLBACKS = "awaiting_callbacks"
    REFUND_REQUESTED = "refund_requested"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_LEG_STATES


FINAL_LEG_STATES = frozenset(
    {LegState.CANCELLED, LegState.REFUNDED, LegState.REJECTED, LegState.FAILED}
)

# States from which a worker may claim the leg and call the provider.
CLAIMABLE_LEG_STATES = frozenset({LegState.PENDING, LegState.RETRYING, LegState.UNKNOWN})

_ALLOWED: dict[LegState, frozenset[LegState]] = {
    LegState.PENDING: frozenset({LegState.IN_FLIGHT, LegState.REJECTED, LegState.FAILED}),
    LegState.IN_FLIGHT: frozenset(
        {
            # Given back before any call was made: its lease ran too short (services/legs.py).
            LegState.PENDING,
            LegState.RETRYING,
            LegState.UNKNOWN,
            LegState.AWAITING_CALLBACKS,
            LegState.REFUND_REQUESTED,
            LegState.CANCELLED,
            LegState.REJECTED,
            LegState.FAILED,
        }
    ),
    LegState.RETRYING: frozenset({LegState.IN_FLIGHT, LegState.FAILED, LegState.REJECTED}),
    LegState.UNKNOWN: frozenset({LegState.IN_FLIGHT, LegState.FAILED, LegState.REJECTED}),
    LegState.AWAITING_CALLBACKS: frozenset(
        {LegState.CANCELLED, LegState.FAILED, LegState.IN_FLIGHT}
    ),
    LegState.REFUND_REQUESTED: frozenset({LegState.REFUNDED, LegState.FAILED, LegState.IN_FLIGHT}),
    LegState.CANCELLED: frozenset(),
    LegState.REFUNDED: frozenset(),
    LegState.REJECTED: frozenset(),
    LegState.FAILED: frozenset(),
}


def can_transition(current: LegState, new: LegState) -> bool:
    """Whether the leg state machine allows ``current -> new``."""
    return new in _ALLOWED[current]


class JobState(StrEnum):
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    AWAITING_CALLBACKS = "awaiting_callbacks"
    RECONCILED = "reconciled"
    MISMATCH = "mismatch"
    FAILED = "failed"
    INVALID = "invalid"

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATES


FINAL_JOB_STATES = frozenset(
    {JobState.RECONCILED, JobState.MISMATCH, JobState.FAILED, JobState.INVALID}
)


class Reason(StrEnum):
    NOT_CANCELLABLE = "not_cancellable"
    CUTOFF_PASSED = "cutoff_passed"
    NOT_FOUND = "not_found"
    AUTH_FAILED = "auth_failed"
    INVALID_REQUEST = "invalid_request"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    RETRIES_EXHAUSTED = "retries_exhausted"
    CALLBACK_TIMEOUT = "callback_timeout"
    PROVIDER_ERROR = "provider_error"
    # issue 17: operator actions
    ABANDONED = "abandoned"
    RESOLVED_BY_OPERATOR = "resolved_by_operator"
