"""What a provider call came to, as values. Expected business outcomes are not exceptions."""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Reason


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The target is cancelled; ``already`` when it was so before we asked."""

    already: bool
    reference: str | None = None
    detail: str | None = None
    evidence: LegEvidence | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent refusal, with the contract's reason and words a person can act on."""

    reason: Reason
    detail: str


@dataclass(frozen=True)
class _Queued:
    """The provider queued the operation; per-payment results will come as callbacks.

    ``reference`` is None when the operation's id is unknown (the provider said it was already
    done): its callbacks are then matched by the target's code.
    """

    reference: str | None
    expected_count: int | None = None
    at_risk: bool = False
    already: bool = False
    detail: str | None = None


@dataclass(frozen=True)
class AwaitingCallbacks(_Queued):
    """A cancel was queued."""


@dataclass(frozen=True)
class RefundRequested(_Queued):
    """A refund was queued (the payment day was over)."""


@dataclass(frozen=True, slots=True)
class StillCancellable:
    """A read after an ambiguous answer found the target untouched: cancelling is safe."""


Outcome = Cancelled | Rejected | AwaitingCallbacks | RefundRequested
ResolveOutcome = Outcome | StillCancellable
