"""6DOT50 legs: cancel a DRAFT batch; after a refusal or an ambiguous answer, read the batch."""

from __future__ import annotations

import uuid

from worker.domain.outcomes import Cancelled, Outcome, Rejected, ResolveOutcome, StillCancellable
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.providers.calls import CallObserver
from worker.providers.errors import InvalidRequest
from worker.providers.sixdot50 import CURRENCY, Batch, BatchStatus, SixDot50


def evidence_from(batch: Batch) -> LegEvidence:
    """The batch summary in the reconciliation's shape."""
    s = batch.summary
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
        except InvalidRequest as refusal:
            # The status 6DOT50 uses to refuse a non-DRAFT batch is undocumented: read the batch
            # and decide from its status rather than from the refusal.
            return self._decide_after_refusal(batch_id, refusal, calls)
        if batch.status != BatchStatus.CANCELLED:
            return Rejected(
                Reason.PROVIDER_ERROR,
                f"cancel answered the batch in status {batch.status}, not CANCELLED",
            )
        return Cancelled(already=False, reference=batch.id)

    def _decide_after_refusal(
        self, batch_id: uuid.UUID, refusal: InvalidRequest, calls: CallObserver
    ) -> Outcome:
        batch = self._api.get_batch(batch_id, calls)
        if batch.status == BatchStatus.CANCELLED:
            return Cancelled(already=True, reference=batch.id,
                             detail="the batch was already CANCELLED")
        if batch.status in (BatchStatus.OPEN, BatchStatus.CLOSED):
            return Rejected(
                Reason.NOT_CANCELLABLE,
                f"batch is {batch.status}: a submitted batch can never be cancelled",
            )
        return Rejected(Reason.INVALID_REQUEST, f"6DOT50 refused the cancel: {refusal.message}")

    def resolve(
        self, target: dict[str, str], calls: CallObserver, on_cutoff: str = "reject"
    ) -> ResolveOutcome:
        batch = self._api.get_batch(uuid.UUID(target["batch_id"]), calls)
        if batch.status == BatchStatus.CANCELLED:
            # Most likely our own earlier call, whose answer was lost.
            return Cancelled(already=False, reference=batch.id,
                             detail="cancel confirmed by reading the batch after a lost answer")
        if batch.status == BatchStatus.DRAFT:
            return StillCancellable()
        return Rejected(
            Reason.NOT_CANCELLABLE,
            f"batch is {batch.status}: a submitted batch can never be cancelled",
        )

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        """The summary once it adds up; None while payments are still moving.

        A payment that was settling when the batch was cancelled shows in neither count until
        6DOT50 finishes it: the sweep reads the summary again until cancelled and settled account
        for every payment, and the job's reconciliation waits for that.
        """
        batch = self._api.get_batch(uuid.UUID(target["batch_id"]), calls)
        s = batch.summary
        if s.cancelled_count + s.settled_count < s.payments_count:
            return None
        return evidence_from(batch)
