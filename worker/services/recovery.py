"""Lost Paywall callbacks: ask for them again, then read the query, and only then give up.

Stage 0 -> 1: ``CALLBACK_TIMEOUT_SECONDS`` after the cancel, ask Paywall to send the pages again.
Stage 1 -> 2: as long again later, read the bulk query endpoint (1,000 rows a page, page after page
until one comes back short: its totals are never needed) and take the per-payment results from
there. Stage 2: the leg ends ``failed / callback_timeout``.
Each stage is claimed with a compare-and-set before any provider call, so two sweeps (or two
workers given the same leg) never both act. The provider calls go through the leg's driver as a
``CallbackRecovery`` port; a driver without that capability gives up at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from worker.domain.reconciliation import Source, leg_reconciliation
from worker.domain.states import LegState, Reason
from worker.providers.errors import ProviderError
from worker.services.attempts import AttemptRecorder
from worker.services.callbacks import WAITING, _Sum, evidence_from, settle_leg
from worker.services.context import Context
from worker.services.jobs import refresh_job
from worker.services.outcome_log import leg_ended
from worker.services.outcomes import dispatch_outcomes
from worker.services.ports import CallbackRecovery, ResultStatus

log = logging.getLogger(__name__)

RECOVERY_NOTES = {
    0: "callbacks incomplete at the deadline: asked Paywall to send them again",
    1: "callbacks still incomplete: reading Paywall's query endpoint",
}


def recover_leg(ctx: Context, leg_id: str) -> str | None:
    """Run the leg's next recovery stage if it is due; what was done, or None."""
    if settle_leg(ctx, leg_id) is not None:
        return "settled"  # the pages were in after all
    now = ctx.clock()
    with ctx.uow() as uow:
        leg = uow.legs.get(leg_id)
        if (leg is None or leg.state not in WAITING or leg.next_attempt_at is None
                or leg.next_attempt_at > now):
            return None
        stage = leg.recovery_stage
        claimed = uow.legs.update(
            leg.id, leg.version,
            recovery_stage=stage + 1,
            detail=RECOVERY_NOTES.get(stage, leg.detail),
            next_attempt_at=now + timedelta(seconds=ctx.callback_timeout_seconds),
            updated_at=now,
        )
        uow.commit()
    if not claimed:
        return None  # another sweep took this stage
    driver = ctx.drivers.get(leg.provider)
    if stage >= 2 or not isinstance(driver, CallbackRecovery):
        return _give_up(ctx, leg_id)
    calls = AttemptRecorder(ctx, leg.id)
    try:
        if stage == 0:
            refused = driver.request_resend(leg.target, calls)
            if refused is not None:
                log.warning("leg %s: %s refused to re-send callbacks: %s", leg_id, leg.provider,
                            refused)
            return "resend_requested"
        return _from_query(ctx, leg_id, driver, calls)
    except ProviderError as err:
        # The next stage runs at the next deadline whatever happened here.
        log.warning("leg %s: recovery stage %d failed: %s", leg_id, stage + 1, err)
        return "stage_failed"


def _from_query(ctx: Context, leg_id: str, recovery: CallbackRecovery,
                calls: AttemptRecorder) -> str:
    with ctx.uow() as uow:
        leg = uow.legs.get(leg_id)
    if leg is None or leg.state not in WAITING:
        return "settled"
    scope, final_state = WAITING[leg.state]
    total = _Sum()
    for result in recovery.query_results(leg.target, scope, calls):
        ok = result.status is ResultStatus.OK
        failed = result.status is ResultStatus.FAILED
        total.add({"count": 1, "amount": str(result.amount or 0), "ok_count": int(ok),
                   "ok_amount": str(result.amount if ok else 0), "failed_count": int(failed),
                   "pending_count": int(not ok and not failed)})
    complete = total.count > 0 and total.pending_count == 0 and (
        leg.expected_count is None or total.count >= leg.expected_count)
    if not complete:
        log.warning("leg %s: the query shows %d of %s results", leg_id, total.count,
                    leg.expected_count)
        return "query_incomplete"
    evidence = evidence_from(scope, total, leg.expected_count, Source.PAYWALL_QUERY)
    now = ctx.clock()
    owed: list[str] = []  # outcomes (issue 17)
    with ctx.uow() as uow:
        current = uow.legs.get(leg_id)
        if current is None or current.state not in WAITING or not uow.legs.update(
            leg_id, current.version,
            state=final_state.value,
            reconciliation=leg_reconciliation(leg_id, evidence),
            detail="callbacks never came: figures taken from Paywall's query endpoint",
            next_attempt_at=None,
            updated_at=now,
        ):
            return "settled"
        refresh_job(uow, current.job_id, now, owed)
        uow.commit()
    dispatch_outcomes(ctx, owed)  # outcomes (issue 17)
    return "recovered_from_query"


def _give_up(ctx: Context, leg_id: str) -> str:
    now = ctx.clock()
    owed: list[str] = []  # outcomes (issue 17)
    with ctx.uow() as uow:
        leg = uow.legs.get(leg_id)
        if leg is None or leg.state not in WAITING:
            return "settled"
        detail = "no callbacks after a re-send, and the query did not show every result"
        if uow.legs.update(
            leg.id, leg.version,
            state=LegState.FAILED.value,
            reason=Reason.CALLBACK_TIMEOUT.value,
            detail=detail,
            next_attempt_at=None,
            updated_at=now,
        ):
            leg_ended(leg, LegState.FAILED, Reason.CALLBACK_TIMEOUT.value, detail)
            refresh_job(uow, leg.job_id, now, owed)
            uow.commit()
    dispatch_outcomes(ctx, owed)  # outcomes (issue 17)
    return "failed"

