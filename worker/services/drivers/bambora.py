"""Bambora legs: cancel an Authorized payment; after a refusal or a conflict, read it first.

Operations made in Bambora's merchant portal are not reflected in the API's refusals, so a
refusal is never the last word: the payment's state decides.
"""

from __future__ import annotations

from decimal import Decimal

from worker.domain.outcomes import Cancelled, Outcome, Rejected, ResolveOutcome, StillCancellable
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.providers.bambora import Bambora, Payment, PaymentState
from worker.providers.calls import CallObserver
from worker.providers.errors import Conflict, NotCancellable

NEEDS_REFUND = (PaymentState.CAPTURED, PaymentState.SETTLED)


def evidence_from(payment: Payment) -> LegEvidence:
    cancelled = payment.state == PaymentState.CANCELED
    return LegEvidence(
        source=Source.BAMBORA_PAYMENT,
        currency=payment.currency,
        expected=Figures(1, payment.amount),
        reported=Reported(
            cancelled_count=1 if cancelled else 0,
            cancelled_amount=payment.amount if cancelled else Decimal(0),
            settled_count=1 if payment.state in NEEDS_REFUND else 0,
            settled_amount=payment.amount if payment.state in NEEDS_REFUND else Decimal(0),
        ),
    )


def _decide(payment: Payment, *, already: bool, detail: str | None = None) -> Outcome | None:
    """The outcome a payment's state dictates; None when it is still Authorized."""
    if payment.state == PaymentState.CANCELED:
        return Cancelled(already=already, reference=payment.reference, detail=detail,
                         evidence=evidence_from(payment))
    if payment.state == PaymentState.AUTHORIZED:
        return None
    if payment.state in NEEDS_REFUND:
        return Rejected(Reason.NOT_CANCELLABLE,
                        f"payment is {payment.state}: it needs a refund, not a cancel")
    if payment.state == PaymentState.REFUNDED:
        return Rejected(Reason.NOT_CANCELLABLE, "payment is already Refunded")
    return Rejected(Reason.NOT_CANCELLABLE, f"payment is {payment.state}: nothing to cancel")


class BamboraDriver:
    provider = Provider.BAMBORA

    def __init__(self, api: Bambora) -> None:
        self._api = api

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        merchant, reference = target["merchant"], target["payment_reference"]
        try:
            payment = self._api.cancel_payment(merchant, reference, calls)
        except NotCancellable:
            outcome = _decide(self._api.get_payment(merchant, reference, calls), already=True,
                              detail="the payment was already Canceled")
            if outcome is None:
                # Refused, yet still Authorized: a state in flux; try again later.
                raise
            return outcome
        except Conflict:
            # payment_operation_blocked: someone else is changing it. Read, then retry.
            outcome = _decide(self._api.get_payment(merchant, reference, calls), already=True,
                              detail="the payment was Canceled by another operation")
            if outcome is None:
                raise
            return outcome
        return _decide(payment, already=False) or Rejected(
            Reason.PROVIDER_ERROR, "cancel answered 201 but the payment is still Authorized")

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        payment = self._api.get_payment(target["merchant"], target["payment_reference"], calls)
        outcome = _decide(payment, already=False,
                          detail="cancel confirmed by reading the payment after a lost answer")
        return StillCancellable() if outcome is None else outcome

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return evidence_from(
            self._api.get_payment(target["merchant"], target["payment_reference"], calls))
