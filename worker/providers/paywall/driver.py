"""Paywall legs: the same-day rule, cancel or refund, and reading state back from the query.

A cancel is only accepted on the payment day in Paywall's zone; after it the money must be
refunded (``on_cutoff: refund``) or the leg is refused (``cutoff_passed``). An accepted operation
only queues work: the leg then waits for its callback pages. Paywall's "not at this time" (269)
ends the day only when our clock in ``PAYWALL_TIMEZONE`` agrees; otherwise it is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from worker.domain.outcomes import (
    AwaitingCallbacks,
    Outcome,
    RefundRequested,
    Rejected,
    ResolveOutcome,
    StillCancellable,
)
from worker.domain.reconciliation import LegEvidence
from worker.domain.states import Provider, Reason
from worker.providers.calls import CallObserver
from worker.providers.errors import ProviderUnavailable
from worker.providers.paywall.adapter import PROVIDER, Accepted, Paywall, Refused
from worker.providers.paywall.codes import Meaning
from worker.providers.paywall.recovery import PaywallRecovery
from worker.services.ports import QueriedResult

# [doc] requests in the last minutes of a day may be processed after midnight.
AT_RISK_FROM = time(23, 50)
UNNAMED = "Paywall queued it without its BulkPaymentId: its callback pages are matched by the code"


class PaywallDriver:
    """The leg policy, and callback recovery (``CallbackRecovery``) for the pages' legs."""

    provider = Provider.PAYWALL

    def __init__(self, api: Paywall, zone: ZoneInfo, clock: Callable[[], datetime]) -> None:
        self._api = api
        self._zone = zone
        self._clock = clock
        self._recovery = PaywallRecovery(api)

    def _local_now(self) -> datetime:
        return self._clock().astimezone(self._zone)

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        code, day, single = _parse(target)
        now = self._local_now()
        if now.date() > day:
            return self._after_cutoff(code, day, single, on_cutoff, calls)
        at_risk = now.time() >= AT_RISK_FROM
        cancel = self._api.cancel_payment if single else self._api.cancel_bulk
        result = cancel(code, day, calls)
        if isinstance(result, Accepted):
            notes = [UNNAMED] if result.bulk_payment_id is None else []
            if at_risk:
                notes.append(f"sent at {now:%H:%M} {self._zone.key} time: Paywall may process "
                             "it after midnight, when a cancel is no longer possible")
            return AwaitingCallbacks(result.bulk_payment_id, result.total_payment_count,
                                     at_risk=at_risk, detail="; ".join(notes) or None)
        if result.meaning is Meaning.NOT_NOW:
            if self._local_now().date() > day:
                # The day ended between the start of this round and Paywall's answer.
                return self._after_cutoff(code, day, single, on_cutoff, calls)
            raise _not_now(result, f"the payment day {day} is not over in {self._zone.key}",
                           "cancel_payment" if single else "cancel_bulk")
        return _refusal(result, wanted="cancel")

    def _after_cutoff(self, code: str, day: date, single: bool, on_cutoff: str,
                      calls: CallObserver) -> Outcome:
        if on_cutoff != "refund":
            return Rejected(
                Reason.CUTOFF_PASSED,
                f"payment day {day} is over in {self._zone.key}: Paywall only cancels on the "
                "payment day, and on_cutoff is reject",
            )
        refund = self._api.refund_payment if single else self._api.refund_bulk
        result = refund(code, day, calls)
        if isinstance(result, Accepted):
            notes = [f"payment day {day} is over: refunding instead"]
            if result.bulk_payment_id is None:
                notes.append(UNNAMED)
            return RefundRequested(result.bulk_payment_id, result.total_payment_count,
                                   detail="; ".join(notes))
        if result.meaning is Meaning.NOT_NOW:
            # Paywall's day has not ended by its clock yet: a refund will be taken later.
            raise _not_now(result, f"the payment day {day} is over in {self._zone.key}",
                           "refund_payment" if single else "refund_bulk")
        return _refusal(result, wanted="refund")

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> ResolveOutcome:
        """After a lost answer: the query shows whether our cancel or refund was taken."""
        code, _day, _single = _parse(target)
        page = self._api.query_bulk(code, 1, calls)
        if isinstance(page, Refused):
            if page.meaning is Meaning.NOT_FOUND:
                return Rejected(Reason.NOT_FOUND, f"Paywall knows no payments under {code}")
            return StillCancellable()
        scopes = {row.scope for row in page.rows}
        if "refund" in scopes:
            return RefundRequested(None, detail="refund confirmed by the query after a lost answer")
        if "cancel" in scopes:
            return AwaitingCallbacks(
                None, detail="cancel confirmed by the query after a lost answer"
            )
        return StillCancellable()

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        # Paywall's figures come from its callback pages (or the query, in recovery).
        return None

    def request_resend(self, target: dict[str, str], calls: CallObserver) -> str | None:
        return self._recovery.request_resend(target, calls)

    def query_results(self, target: dict[str, str], scope: str,
                      calls: CallObserver) -> Iterator[QueriedResult]:
        return self._recovery.query_results(target, scope, calls)


def _parse(target: dict[str, str]) -> tuple[str, date, bool]:
    return (target["merchant_unique_code"], date.fromisoformat(target["payment_date"]),
            target.get("scope") == "payment")


def _not_now(result: Refused, ours: str, operation: str) -> ProviderUnavailable:
    """Paywall's 269 while our clock disagrees: retried within the attempts budget."""
    return ProviderUnavailable(
        f"Paywall says not at this time (code {result.code}: {result.message}) while {ours}: "
        "trying again later", provider=PROVIDER, operation=operation,
        provider_code=str(result.code))


def _refusal(result: Refused, *, wanted: str) -> Outcome:
    said = f"Paywall refused the {wanted} (code {result.code}: {result.message})"
    if result.meaning is Meaning.ALREADY_CANCELLED:
        # Cancelled already (by us, with an answer lost, or by someone): the money is back
        # either way, and the cancel's pages carry the figures.
        return AwaitingCallbacks(None, already=True,
                                 detail="Paywall says it was already cancelled; its callback "
                                        "pages (or the query) will give the figures")
    if result.meaning is Meaning.ALREADY_REFUNDED and wanted == "refund":
        return RefundRequested(None, already=True,
                               detail="Paywall says it was already refunded")
    if result.meaning is Meaning.NOT_FOUND:
        return Rejected(Reason.NOT_FOUND, said)
    if result.meaning in (Meaning.ALREADY_REFUNDED, Meaning.ALREADY_FINALIZED,
                          Meaning.NOT_CONVENIENT, Meaning.ALREADY_CANCELLED):
        return Rejected(Reason.NOT_CANCELLABLE, said)
    if result.meaning is Meaning.INVALID:
        return Rejected(Reason.INVALID_REQUEST, said)
    return Rejected(Reason.PROVIDER_ERROR, said)
