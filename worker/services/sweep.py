"""The sweep (run by beat): finds work whose message was lost and dispatches it again.

Safe with any number of sweeps at once: it only dispatches, and every task claims its leg with
a compare-and-set, so a leg dispatched twice still runs once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from worker.domain.states import LegState
from worker.services.context import Context

log = logging.getLogger(__name__)

SWEEP_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepReport:
    redispatched: int
    expired_leases: int
    evidence_reads: int
    callback_recoveries: int = 0


def sweep(ctx: Context) -> SweepReport:
    """Re-dispatch overdue legs, legs whose worker died mid-call, and missing evidence reads."""
    now = ctx.clock()
    # A leg's message should start within a lease of its due time; later, presume it lost.
    overdue_before = now - timedelta(seconds=ctx.lease_seconds)
    with ctx.uow(read_only=True) as ledger:
        overdue = ledger.legs_due(
            overdue_before, [LegState.PENDING, LegState.RETRYING, LegState.UNKNOWN], SWEEP_BATCH
        )
        expired = ledger.legs_with_expired_lease(now, SWEEP_BATCH)
        unread = ledger.cancelled_legs_without_evidence(SWEEP_BATCH)
        waiting = ledger.legs_waiting_due(now, SWEEP_BATCH)
    for leg in [*overdue, *expired]:
        ctx.dispatcher.process_leg(leg.id)
    for leg in unread:
        ctx.dispatcher.read_evidence(leg.id)
    for leg in waiting:
        ctx.dispatcher.recover_callbacks(leg.id)
    report = SweepReport(len(overdue), len(expired), len(unread), len(waiting))
    if overdue or expired or unread:
        log.info("sweep: %s", report)
    return report
