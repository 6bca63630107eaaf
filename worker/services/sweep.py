"""The sweep (run by beat): finds work whose message was lost and dispatches it again, and the
re-reads of figures that did not add up yet.

Safe with any number of sweeps at once: the legs it dispatches are locked (``SKIP LOCKED`` on
PostgreSQL) and marked in the same transaction, so concurrent sweeps share the work; and every
task claims its leg with a compare-and-set, so a leg dispatched twice still runs once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from worker.domain.evidence_wait import read_interval
from worker.domain.states import LegState
from worker.domain.task_label import TaskLabel
from worker.services.context import Context
from worker.services.outcomes import redispatch_overdue_outcomes

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
    with ctx.uow() as uow:
        overdue = uow.legs.due(
            overdue_before, [LegState.PENDING, LegState.RETRYING, LegState.UNKNOWN], SWEEP_BATCH
        )
        # Due again as of now: the next sweep waits a full grace before dispatching again.
        uow.legs.postpone([leg.id for leg in overdue], now)
        expired = uow.legs.with_expired_lease(now, SWEEP_BATCH)
        # The holder died mid-call (or is hopelessly late): whether its call took effect is
        # unknown, and it is said so here, so that the next sweep does not dispatch it again.
        expired = [leg for leg in expired if uow.legs.update(
            leg.id, leg.version, state=LegState.UNKNOWN.value, needs_resolve=True,
            lease_token=None, lease_expires_at=None, next_attempt_at=now, updated_at=now)]
        # Cancelled legs whose figures are missing or do not add up yet, read again at most once
        # an interval; their wait ends CALLBACK_TIMEOUT_SECONDS after the cancel (evidence.py).
        unread = uow.legs.cancelled_without_evidence(now, SWEEP_BATCH)
        uow.legs.postpone([leg.id for leg in unread],
                          now + read_interval(ctx.callback_timeout_seconds))
        waiting = uow.legs.waiting_due(now, SWEEP_BATCH)
        uow.commit()
    for leg in [*overdue, *expired]:
        ctx.dispatcher.process_leg(leg.id, label=TaskLabel.for_leg(leg))
    for leg in unread:
        ctx.dispatcher.read_evidence(leg.id, label=TaskLabel.for_leg(leg))
    for leg in waiting:
        ctx.dispatcher.recover_callbacks(leg.id, label=TaskLabel.for_leg(leg))
    redispatch_overdue_outcomes(ctx)  # outcomes (issue 17): owed deliveries whose message was lost
    report = SweepReport(len(overdue), len(expired), len(unread), len(waiting))
    if overdue or expired or unread:
        log.info("sweep: %s", report)
    return report
