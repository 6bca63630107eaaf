"""6DOT50 legs: cancel a DRAFT batch; after a refusal or an ambiguous answer, read the batch.

The cancel answers the batch with its summary [doc, seed 000]: the leg reconciles from that
answer, and reads ``GET /batches/{id}`` only when the answer was lost or its summary does not
add up (a payment still settling); one call per leg, not two.
"""

from __future__ import annotations

import logging
import uuid

from worker.domain.outcomes import Cancelled, Outcome, Rejected, ResolveOutcome, StillCancellable
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.providers.calls import CallObserver
from worker.providers.errors import MalformedResponse, ProviderError
from worker.providers.sixdot50.adapter import (
    CURRENCY,
    PROVIDER,
    REFUSALS,
    Batch,
    BatchStatus,
    SixDot50,
)

log = logging.getLogger(__name__)
SUBMITTED = (BatchStatus.OPEN, BatchStatus.CLOSED)


def evidence_from(batch: Batch) -> LegEvidence | None:
    """The batch summary in the reconciliation's shape; None when the answer had none."""
    s = batch.summary
    if s is None:
        return None
    return LegEvidence(
        source=Source.SIXDOT50_SUMMARY,
        currency=CURRENCY,
        expected=Figures(s.payments_count, s.payments_amount),
        reported=Reported(
            cancelled_count=s.cancelled_count,
            cancelled_amount=s.cancelled_amount,
            settled_count=s.settled_count,
            settled_amount=s.settled_amount,
        ),
    )


def _not_cancellable(batch: Batch) -> Rejected:
    if batch.status in SUBMITTED:
        detail = f"batch is {batch.status}: a submitted batch can never be cancelled"
    else:
        detail = f"batch is {batch.status}: only a DRAFT batch can be cancelled"
    return Rejected(Reason.NOT_CANCELLABLE, detail)


class SixDot50Driver:
    provider = Provider.SIXDOT50

    def __init__(self, api: SixDot50) -> None:
        self._api = api

    def cancel(
        self, target: dict[str, str], calls: CallObserver, on_cutoff: str = "reject"
    ) -> Outcome:
        batch_id = uuid.UUID(target["batch_id"])
        try:
            batch = self._api.cancel_batch(batch_id, calls)
        except REFUSALS as refusal:
            # The status 6DOT50 uses to refuse a non-DRAFT batch is undocumented: read the batch
            # and decide from its status rather than from the refusal.
            return self._decide_after_refusal(batch_id, refusal, calls)
        if batch.status != BatchStatus.CANCELLED:
            # A success that does not say CANCELLED: whether the cancel took is unknown until
            # the batch is read (the next round reads it before any new cancel).
            raise MalformedResponse(
                f"cancel answered the batch in status {batch.status}, not CANCELLED",
                provider=PROVIDER, operation="cancel_batch", ambiguous=True)
        return Cancelled(already=False, reference=batch.id, evidence=evidence_from(batch))

    def _decide_after_refusal(
        self, batch_id: uuid.UUID, refusal: ProviderError, calls: CallObserver
    ) -> Outcome:
        batch = self._api.get_batch(batch_id, calls)
        if batch.status == BatchStatus.CANCELLED:
            return Cancelled(already=True, reference=batch.id, evidence=evidence_from(batch),
                             detail="the batch was already CANCELLED")
        if batch.status == BatchStatus.DRAFT:
            # Still cancellable yet refused: the refusal decides (a 409 is tried again later,
            # a 400 means our request is wrong).
            log.warning("6DOT50 refused to cancel DRAFT batch %s: %s", batch_id, refusal)
            raise refusal
        return _not_cancellable(batch)

    def resolve(
        self, target: dict[str, str], calls: CallObserver, on_cutoff: str = "reject"
    ) -> ResolveOutcome:
        batch = self._api.get_batch(uuid.UUID(target["batch_id"]), calls)
        if batch.status == BatchStatus.CANCELLED:
            # Most likely our own earlier call, whose answer was lost.
            return Cancelled(already=False, reference=batch.id, evidence=evidence_from(batch),
                             detail="cancel confirmed by reading the batch after a lost answer")
        if batch.status == BatchStatus.DRAFT:
            return StillCancellable()
        return _not_cancellable(batch)

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        """The batch summary as it reads now, whether or not it adds up yet.

        A payment that was settling when the batch was cancelled shows in neither count until
        6DOT50 finishes it: such figures are not ``complete``, and the leg reads them again
        until they are or its wait for them ends (``worker.services.evidence``).
        """
        return evidence_from(self._api.get_batch(uuid.UUID(target["batch_id"]), calls))
