"""Bambora legs: cancel an Authorized payment; after a refusal or a conflict, read it first.

The payment's ``state`` decides [doc, seed 002]. Operations made in Bambora's merchant portal are
not reflected in the API [doc, seed 002], so a refusal is never the last word: the payment is
read, and a refusal while it still reads Authorized is tried again later, not taken as final.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from worker.domain.outcomes import Cancelled, Outcome, Rejected, ResolveOutcome, StillCancellable
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.providers.bambora.adapter import PROVIDER, Bambora, Payment, PaymentState
from worker.providers.calls import CallObserver
from worker.providers.errors import (
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotCancellable,
    ProviderError,
    RefusedWhileCancellable,
)

log = logging.getLogger(__name__)
NEEDS_REFUND = (PaymentState.CAPTURED, PaymentState.SETTLED)
REFUSALS = (NotCancellable, Conflict, InvalidRequest)
# ISO 4217's code for "no currency": the figures of a payment whose answer gave no usable
# amount and currency count the payment, not its money.
NO_CURRENCY = "XXX"
PORTAL_HINT = (
    "Bambora refused the cancel while its API still reads the payment Authorized; a cancel or "
    "capture made in Bambora's merchant portal is not reflected in the API: tried again later. "
    "If it persists, check the payment in the merchant portal and resolve the leg."
)


def evidence_from(payment: Payment) -> LegEvidence:
    """One payment in the reconciliation's shape (amounts zero in ``XXX`` when unknown)."""
    cancelled = payment.state == PaymentState.CANCELED
    settled = payment.state in NEEDS_REFUND
    amount = payment.amount if payment.amount is not None else Decimal(0)
    return LegEvidence(
        source=Source.BAMBORA_PAYMENT,
        currency=payment.currency if payment.amount is not None and payment.currency
        else NO_CURRENCY,
        expected=Figures(1, amount),
        reported=Reported(
            cancelled_count=1 if cancelled else 0,
            cancelled_amount=amount if cancelled else Decimal(0),
            settled_count=1 if settled else 0,
            settled_amount=amount if settled else Decimal(0),
        ),
    )


def _money_note(payment: Payment) -> str | None:
    """Why the figures carry no amount, for the leg's detail; None when they do."""
    if payment.amount is not None:
        return None
    given = f"{payment.amount_minor} minor units" if payment.amount_minor is not None else "none"
    return (f"Bambora's answer gave no usable amount and currency (amount: {given}); the "
            f"figures count the payment in {NO_CURRENCY}, not its money")


def _decide(payment: Payment, *, already: bool, detail: str | None = None) -> Outcome | None:
    """The outcome a payment's state dictates; None when it is still Authorized."""
    if payment.state == PaymentState.CANCELED:
        notes = "; ".join(n for n in (detail, _money_note(payment)) if n) or None
        return Cancelled(already=already, reference=payment.reference, detail=notes,
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
        except REFUSALS as refusal:
            return self._decide_after_refusal(merchant, reference, refusal, calls)
        outcome = _decide(payment, already=False)
        if outcome is None:
            # A success that still reads Authorized: whether the cancel took is unknown until the
            # payment is read again (the next round reads before any new cancel).
            raise MalformedResponse("cancel succeeded but the payment still reads Authorized",
                                    provider=PROVIDER, operation="cancel_payment",
                                    ambiguous=True)
        return outcome

    def _decide_after_refusal(self, merchant: str, reference: str, refusal: ProviderError,
                              calls: CallObserver) -> Outcome:
        # payment_operation_blocked (409): someone else is changing it. After any refusal the
        # payment's own state decides.
        detail = ("the payment was Canceled by another operation" if isinstance(refusal, Conflict)
                  else "the payment was already Canceled")
        outcome = _decide(self._api.get_payment(merchant, reference, calls), already=True,
                          detail=detail)
        if outcome is not None:
            return outcome
        if isinstance(refusal, NotCancellable):
            log.warning("bambora %s/%s: %s", merchant, reference, PORTAL_HINT)
            raise RefusedWhileCancellable(
                PORTAL_HINT, provider=PROVIDER, operation="cancel_payment",
                http_status=refusal.http_status, provider_code=refusal.provider_code,
                request_id=refusal.request_id) from refusal
        raise refusal

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        payment = self._api.get_payment(target["merchant"], target["payment_reference"], calls)
        outcome = _decide(payment, already=False,
                          detail="cancel confirmed by reading the payment after a lost answer")
        return StillCancellable() if outcome is None else outcome

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        return evidence_from(
            self._api.get_payment(target["merchant"], target["payment_reference"], calls))
