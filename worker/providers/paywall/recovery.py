"""Paywall's callback recovery: ask for the pages again, then read the results from the query.

Send-callback re-sends the latest operation's pages (last 7 days) [doc]; the bulk query lists
every payment row under a code (``Paywall.query_all``), from which the rows of the operation
being waited for are the results, read by their documented status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from worker.providers.calls import CallObserver
from worker.providers.paywall.adapter import STATUS_FAILED, STATUS_SUCCESSFUL, Paywall
from worker.services.ports import QueriedResult, ResultStatus


class PaywallRecovery:
    """The :class:`~worker.services.ports.CallbackRecovery` operations over Paywall's API."""

    def __init__(self, api: Paywall) -> None:
        self._api = api

    def request_resend(self, target: dict[str, str], calls: CallObserver) -> str | None:
        refused = self._api.send_callback(target["merchant_unique_code"],
                                          date.fromisoformat(target["payment_date"]), calls)
        return None if refused is None else str(refused)

    def query_results(self, target: dict[str, str], scope: str,
                      calls: CallObserver) -> Iterator[QueriedResult]:
        for row in self._api.query_all(target["merchant_unique_code"], calls):
            if row.scope != scope:
                continue
            # A row whose status or amount we cannot read is not a result yet.
            known = row.amount is not None and row.status is not None
            if known and row.status == STATUS_SUCCESSFUL:
                status = ResultStatus.OK
            elif known and row.status in STATUS_FAILED:
                status = ResultStatus.FAILED
            else:
                status = ResultStatus.PENDING
            yield QueriedResult(row.amount, status)
