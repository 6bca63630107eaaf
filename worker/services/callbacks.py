"""Paywall callbacks: store a verified page durably, and settle the legs whose pages are all in.

Storing is the receiver's half (one transaction: the raw body and its parsed payments, keyed so a
duplicate page is the same row). Settling is the worker's half: a leg waiting on callbacks ends
``cancelled`` (or ``refunded``) once every page of its operation is in, with figures summed over
distinct pages, so duplicates and order change nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from worker.domain.reconciliation import (
    Figures,
    LegEvidence,
    Reported,
    Source,
    leg_reconciliation,
)
from worker.domain.states import LegState
from worker.providers.paywall.adapter import CURRENCY
from worker.providers.paywall.callbacks import CallbackPage
from worker.services.context import Context
from worker.services.jobs import refresh_job
from worker.services.outcomes import dispatch_outcomes
from worker.services.records import LegRecord, NewCallbackPage
from worker.services.unit_of_work import AbstractUnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

WAITING = {LegState.AWAITING_CALLBACKS: ("cancel", LegState.CANCELLED),
           LegState.REFUND_REQUESTED: ("refund", LegState.REFUNDED)}


@dataclass(frozen=True, slots=True)
class Stored:
    new: bool  # False for a page stored before: the first copy wins
    complete: bool  # every page of its operation is now in: worth settling


def store_page(uows: UnitOfWorkFactory, page: CallbackPage, raw: bytes,
               now: datetime) -> Stored:
    """Commit the page (raw body and parsed payments) before it is acknowledged: durably, as
    Paywall never sends again a page it got a 200 for."""
    with uows(durable=True) as uow:
        stored = uow.callback_pages.add(NewCallbackPage(
            page.bulk_payment_id, page.merchant_unique_code, page.page_number, page.total_pages,
            raw, page.rows, page.totals(), now))
        have = uow.callback_pages.stored(page.bulk_payment_id, page.merchant_unique_code)
        uow.commit()
    return Stored(stored, have >= page.total_pages)


@dataclass
class _Sum:
    count: int = 0
    amount: Decimal = Decimal(0)
    ok_count: int = 0
    ok_amount: Decimal = Decimal(0)
    failed_count: int = 0
    pending_count: int = 0

    def add(self, totals: dict[str, Any]) -> None:
        self.count += int(totals["count"])
        self.amount += Decimal(totals["amount"])
        self.ok_count += int(totals["ok_count"])
        self.ok_amount += Decimal(totals["ok_amount"])
        self.failed_count += int(totals["failed_count"])
        self.pending_count += int(totals["pending_count"])


def evidence_from(scope: str, total: _Sum, expected_count: int | None,
                  source: Source) -> LegEvidence:
    """Figures in the reconciliation's shape; ``expected_count`` is what the cancel covers."""
    refund = scope == "refund"
    return LegEvidence(
        source=source,
        currency=CURRENCY,
        expected=Figures(expected_count if expected_count is not None else total.count,
                         total.amount),
        reported=Reported(
            cancelled_count=0 if refund else total.ok_count,
            cancelled_amount=Decimal(0) if refund else total.ok_amount,
            refunded_count=total.ok_count if refund else 0,
            refunded_amount=total.ok_amount if refund else Decimal(0),
            failed_count=total.failed_count,
        ),
    )


def _complete_operation(uow: AbstractUnitOfWork, leg: LegRecord,
                        scope: str) -> tuple[str, _Sum] | None:
    """The leg's operation id and summed figures, if all its pages are in."""
    pages_in = uow.callback_pages.totals(bulk_payment_id=leg.provider_reference,
                                         code=None if leg.provider_reference else leg.match_key)
    by_operation: dict[str, dict[int, tuple[int, dict[str, Any]]]] = defaultdict(dict)
    for page in pages_in:
        # The first copy of a page is the one kept; later copies never reach here.
        by_operation[page.bulk_payment_id].setdefault(page.page_number,
                                                      (page.total_pages, page.totals or {}))
    for bulk_id, pages in by_operation.items():
        # Payments whose Scope Paywall did not give ("") belong to the operation of their page:
        # the leg's own, when it knows the operation's id.
        scopes = (scope, "") if bulk_id == leg.provider_reference else (scope,)
        total = _Sum()
        for _pages_total, totals in pages.values():
            for found in scopes:
                if found in totals:
                    total.add(totals[found])
        if total.count == 0:
            continue  # another operation under the same code (a sale, the other scope)
        declared = {pages_total for pages_total, _ in pages.values()}
        all_pages = len(declared) == 1 and len(pages) == declared.pop()
        all_payments = leg.expected_count is not None and total.count >= leg.expected_count
        if (all_pages or all_payments) and total.pending_count == 0:
            return bulk_id, total
    return None


def settle_leg(ctx: Context, leg_id: str) -> LegState | None:
    """End a waiting Paywall leg if its pages are complete; None when it still waits."""
    now = ctx.clock()
    owed: list[str] = []  # outcomes (issue 17)
    with ctx.uow() as uow:
        leg = uow.legs.get(leg_id)
        if leg is None or leg.state not in WAITING:
            return None
        scope, final_state = WAITING[leg.state]
        found = _complete_operation(uow, leg, scope)
        if found is None:
            return None
        bulk_id, total = found
        evidence = evidence_from(scope, total, leg.expected_count, Source.PAYWALL_CALLBACKS)
        if not uow.legs.update(
            leg.id, leg.version,
            state=final_state.value,
            provider_reference=bulk_id,
            reconciliation=leg_reconciliation(leg.id, evidence),
            next_attempt_at=None,
            updated_at=now,
        ):
            return None
        refresh_job(uow, leg.job_id, now, owed)
        uow.commit()
    dispatch_outcomes(ctx, owed)  # outcomes (issue 17)
    log.info("leg %s: %s from %s callback page(s)", leg_id, final_state.value, bulk_id)
    return final_state


def settle_for_page(ctx: Context, bulk_payment_id: str, code: str) -> int:
    """Settle every waiting leg a new page may complete; how many ended."""
    with ctx.uow(read_only=True) as uow:
        candidates = uow.legs.waiting_for(bulk_payment_id, code)
    return sum(1 for leg in candidates if settle_leg(ctx, leg.id) is not None)
