"""A job's state, derived from its legs and its reconciliation (never stored independently)."""

from __future__ import annotations

from collections.abc import Iterable

from worker.domain.reconciliation import ReconciliationState
from worker.domain.states import JobState, LegState

_WAITING_ON_PROVIDER = frozenset({LegState.AWAITING_CALLBACKS, LegState.REFUND_REQUESTED})
_UNSUCCESSFUL = frozenset({LegState.REJECTED, LegState.FAILED})


def derive_job_state(
    leg_states: Iterable[LegState], reconciliation: ReconciliationState
) -> JobState:
    """The job's state: final only when every leg is final and the evidence is in."""
    states = list(leg_states)
    open_states = [state for state in states if not state.is_final]
    if open_states:
        if all(state is LegState.PENDING for state in states):
            return JobState.ACCEPTED
        if all(state in _WAITING_ON_PROVIDER for state in open_states):
            return JobState.AWAITING_CALLBACKS
        return JobState.IN_PROGRESS
    if any(state in _UNSUCCESSFUL for state in states):
        return JobState.FAILED
    if reconciliation is ReconciliationState.PENDING:
        return JobState.IN_PROGRESS
    if reconciliation is ReconciliationState.MISMATCH:
        return JobState.MISMATCH
    return JobState.RECONCILED
